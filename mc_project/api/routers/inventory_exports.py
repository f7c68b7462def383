"""What other tools read of the inventory, and what fills it at once:
``GET /v1/ansible-inventory`` (Ansible's ``--list`` JSON), ``GET /v1/salt-roster``
(salt-ssh's roster of the hosts without a minion) and ``POST /v1/inventory/import``
(YAML or CSV, all or nothing)."""

import contextlib
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from mc_project.api import audit, auth, tenants
from mc_project.api.deps import Strict
from mc_project.api.errors import ApiError
from mc_project.api.routers.inventory import CHANGE_REFUSAL
from mc_project.api.tenants import Principal
from mc_project.inventory import ansible_export, bulk_import, db, salt_roster, secrets_crypto

router = APIRouter(tags=["inventory"])


def _tenant_ids(sess, caller, tenant):
    ids = caller.tenant_ids()
    if tenant is not None:
        wanted = tenants.tenant_id(sess, tenant)
        if wanted not in ids:
            raise ApiError(404, "No tenant named {}.".format(tenant))
        ids = [wanted]
    return ids


@router.get("/ansible-inventory")
def ansible_inventory(request: Request, tenant: str | None = Query(None, max_length=128),
                      caller: Principal = Depends(auth.principal)):
    """Your tenants' hosts (or one tenant's) as an Ansible dynamic inventory: groups per
    group, region, cell and label, every host's resolved variables in ``_meta.hostvars``
    (secret variables left out)."""
    with db.session(request.app.state.url) as sess:
        found = ansible_export.ansible_inventory(sess, _tenant_ids(sess, caller, tenant))
    # Already plain JSON values: encoded at once, not walked again by the framework's encoder.
    return Response(content=ansible_export.to_json(found), media_type="application/json")


@router.get("/salt-roster")
def salt_roster_route(request: Request, tenant: str | None = Query(None, max_length=128),
                      caller: Principal = Depends(auth.principal)):
    """A salt-ssh roster of your hosts that run no minion: ``{name: {host, port, user}}``."""
    with db.session(request.app.state.url) as sess:
        return salt_roster.roster(sess, _tenant_ids(sess, caller, tenant))


class Import(Strict):
    format: Literal["yaml", "csv"]
    content: str = Field(max_length=bulk_import.MAX_BYTES)
    tenant: str | None = Field(None, min_length=1, max_length=128)


@router.post("/inventory/import")
def import_inventory(body: Import, request: Request, caller: Principal = Depends(auth.principal)):
    """Import regions, cells, groups, hosts and variables from YAML (or hosts from CSV) into
    one tenant, all or nothing: a refused item is one sentence naming it, and nothing changes."""
    try:
        document = bulk_import.parse(body.content, body.format)
    except bulk_import.ImportRefused as exc:
        raise ApiError(exc.status, str(exc)) from None
    key_file = request.app.state.ctl.settings["secrets_key"]
    writing = secrets_crypto.writing(key_file) if bulk_import.needs_keyring(document) else contextlib.nullcontext()
    with writing as keyring, db.session(request.app.state.url) as sess:
        tenant_id, tenant_name = tenants.tenant_for_new(sess, caller, body.tenant, "deployer", CHANGE_REFUSAL)
        audit.note(request, target="inventory import ({})".format(body.format), tenant=tenant_name)
        try:
            counts = bulk_import.apply(sess, keyring, caller.name, tenant_id, document)
        except bulk_import.ImportRefused as exc:
            raise ApiError(exc.status, "Nothing was imported. {}".format(exc)) from None
    audit.note(request, result="imported " + ", ".join("{} {}".format(count, kind) for kind, count in counts.items()))
    return {"tenant": tenant_name, "imported": counts}
