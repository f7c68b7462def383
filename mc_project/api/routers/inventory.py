"""The fleet inventory: ``/v1/regions``, ``/v1/cells``, ``/v1/groups``, ``/v1/hosts``, the
variables of each (and of a tenant) and their change logs.

Viewers of a tenant read its inventory; deployers and admins change it and alone
may read secret variables in plain text (``?reveal_secrets=true``). Another
tenant's object answers 404, as everywhere in the API.
"""

import contextlib

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field
from sqlalchemy import func, select

from mc_project.api import audit, auth, tenants
from mc_project.api.deps import Page, Strict
from mc_project.api.errors import ApiError, refusals
from mc_project.api.tenants import Principal
from mc_project.inventory import changelog, db, fleet, host_rows, resolve, search, secret_vars, secrets_crypto
from mc_project.inventory.fleet_models import HOST_KINDS, Cell, HostGroup
from mc_project.inventory.models import Region

router = APIRouter(tags=["inventory"])

Name = Field(min_length=1, max_length=255)
TenantField = Field(None, min_length=1, max_length=128)
CHANGE_REFUSAL = "You may not change the inventory: you are deployer or admin of no tenant."



def _url(request):
    return request.app.state.url


def _secrets_key(request):
    return request.app.state.ctl.settings["secrets_key"]


def _new_in(sess, caller, wanted):
    return tenants.tenant_for_new(sess, caller, wanted, "deployer", CHANGE_REFUSAL)


def _visible(sess, caller, tenant):
    """The tenant ids a list shows: the caller's, or only ``tenant`` (none if not theirs)."""
    ids = caller.tenant_ids()
    if tenant is not None:
        wanted = tenants.tenant_id(sess, tenant)
        ids = [wanted] if wanted in ids else []
    return ids


def _changed(request, sess, tenant_id, target, result=None):
    audit.note(request, target=target, tenant=fleet.tenant_name(sess, tenant_id), result=result)


# --------------------------------------------------------------------------- regions

class NewRegion(Strict):
    name: str = Name
    tenant: str | None = TenantField


class Renamed(Strict):
    name: str = Name


def _region(sess, caller, region_id, role="viewer"):
    region = sess.get(Region, region_id)
    what = "region {}".format(region_id)
    if region is None:
        raise ApiError(404, "No {}.".format(what))
    tenants.check(caller, region.tenant_id, role, what)
    return region


@router.get("/regions")
def list_regions(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
                 name: str | None = Query(None, max_length=255), caller: Principal = Depends(auth.principal)):
    """The regions of your tenants (filters: tenant, name)."""
    with db.session(_url(request)) as sess:
        where = [Region.tenant_id.in_(_visible(sess, caller, tenant))]
        if name is not None:
            where.append(Region.name == name)
        total = sess.scalar(select(func.count(Region.id)).where(*where))
        found = sess.scalars(select(Region).where(*where).order_by(Region.name, Region.id)
                             .limit(page.limit).offset(page.offset)).all()
        return page.answer([fleet.region_record(sess, region) for region in found], total)


@router.post("/regions", status_code=201)
def create_region(body: NewRegion, request: Request, response: Response,
                  caller: Principal = Depends(auth.principal)):
    with db.session(_url(request)) as sess, refusals():
        tenant_id, tenant_name = _new_in(sess, caller, body.tenant)
        audit.note(request, target=body.name, tenant=tenant_name)
        made = fleet.create_region(sess, caller.name, tenant_id, body.name)
    response.headers["Location"] = "/v1/regions/{}".format(made["id"])
    audit.note(request, result="region {} created".format(body.name))
    return made


@router.get("/regions/{region_id}")
def get_region(request: Request, region_id: int = Path(ge=1, le=2 ** 31), caller: Principal = Depends(auth.principal)):
    with db.session(_url(request)) as sess:
        return fleet.region_record(sess, _region(sess, caller, region_id))


@router.patch("/regions/{region_id}")
def rename_region(body: Renamed, request: Request, region_id: int = Path(ge=1, le=2 ** 31),
                  caller: Principal = Depends(auth.principal)):
    with db.session(_url(request)) as sess, refusals():
        region = _region(sess, caller, region_id, "deployer")
        _changed(request, sess, region.tenant_id, region.name, "region renamed {}".format(body.name))
        return fleet.rename_region(sess, caller.name, region, body.name)


@router.delete("/regions/{region_id}", status_code=204)
def delete_region(request: Request, region_id: int = Path(ge=1, le=2 ** 31),
                  caller: Principal = Depends(auth.principal)):
    """Delete a region and its cells (409 while hosts are in it)."""
    with db.session(_url(request)) as sess, refusals():
        region = _region(sess, caller, region_id, "deployer")
        _changed(request, sess, region.tenant_id, region.name, "region {} deleted".format(region.name))
        fleet.delete_region(sess, caller.name, region)
    return Response(status_code=204)


# --------------------------------------------------------------------------- cells

class NewCell(Strict):
    name: str = Name
    region: str = Name
    tenant: str | None = TenantField


def _cell(sess, caller, cell_id, role="viewer"):
    found = sess.execute(select(Cell, Region.tenant_id).join(Region, Region.id == Cell.region_id)
                         .where(Cell.id == cell_id)).first()
    what = "cell {}".format(cell_id)
    if found is None:
        raise ApiError(404, "No {}.".format(what))
    tenants.check(caller, found[1], role, what)
    return found[0], found[1]


@router.get("/cells")
def list_cells(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
               region: str | None = Query(None, max_length=255), name: str | None = Query(None, max_length=255),
               caller: Principal = Depends(auth.principal)):
    """The cells of your tenants' regions (filters: tenant, region, name)."""
    with db.session(_url(request)) as sess:
        where = [Region.tenant_id.in_(_visible(sess, caller, tenant))]
        if region is not None:
            where.append(Region.name == region)
        if name is not None:
            where.append(Cell.name == name)
        base = select(Cell).join(Region, Region.id == Cell.region_id).where(*where)
        total = sess.scalar(select(func.count()).select_from(base.subquery()))
        found = sess.scalars(base.order_by(Region.name, Cell.name).limit(page.limit).offset(page.offset)).all()
        return page.answer([fleet.cell_record(sess, cell) for cell in found], total)


@router.post("/cells", status_code=201)
def create_cell(body: NewCell, request: Request, response: Response, caller: Principal = Depends(auth.principal)):
    with db.session(_url(request)) as sess, refusals():
        tenant_id, tenant_name = _new_in(sess, caller, body.tenant)
        audit.note(request, target="{}/{}".format(body.region, body.name), tenant=tenant_name)
        made = fleet.create_cell(sess, caller.name, fleet.region_by_name(sess, tenant_id, body.region), body.name)
    response.headers["Location"] = "/v1/cells/{}".format(made["id"])
    audit.note(request, result="cell {} created in region {}".format(body.name, body.region))
    return made


@router.get("/cells/{cell_id}")
def get_cell(request: Request, cell_id: int = Path(ge=1, le=2 ** 31), caller: Principal = Depends(auth.principal)):
    with db.session(_url(request)) as sess:
        return fleet.cell_record(sess, _cell(sess, caller, cell_id)[0])


@router.patch("/cells/{cell_id}")
def rename_cell(body: Renamed, request: Request, cell_id: int = Path(ge=1, le=2 ** 31),
                caller: Principal = Depends(auth.principal)):
    with db.session(_url(request)) as sess, refusals():
        cell, tenant_id = _cell(sess, caller, cell_id, "deployer")
        _changed(request, sess, tenant_id, cell.name, "cell renamed {}".format(body.name))
        return fleet.rename_cell(sess, caller.name, cell, body.name)


@router.delete("/cells/{cell_id}", status_code=204)
def delete_cell(request: Request, cell_id: int = Path(ge=1, le=2 ** 31), caller: Principal = Depends(auth.principal)):
    """Delete a cell (409 while hosts are in it)."""
    with db.session(_url(request)) as sess, refusals():
        cell, tenant_id = _cell(sess, caller, cell_id, "deployer")
        _changed(request, sess, tenant_id, cell.name, "cell {} deleted".format(cell.name))
        fleet.delete_cell(sess, caller.name, cell)
    return Response(status_code=204)


# --------------------------------------------------------------------------- groups

class NewGroup(Strict):
    name: str = Name
    children: list[str] = Field(default_factory=list, max_length=1000)
    tenant: str | None = TenantField


class GroupChange(Strict):
    name: str | None = Field(None, min_length=1, max_length=255)
    children: list[str] | None = Field(None, max_length=1000)


def _group(sess, caller, group_id, role="viewer"):
    group = sess.get(HostGroup, group_id)
    what = "group {}".format(group_id)
    if group is None:
        raise ApiError(404, "No {}.".format(what))
    tenants.check(caller, group.tenant_id, role, what)
    return group


@router.get("/groups")
def list_groups(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
                name: str | None = Query(None, max_length=255), caller: Principal = Depends(auth.principal)):
    """The host groups of your tenants (filters: tenant, name)."""
    with db.session(_url(request)) as sess:
        where = [HostGroup.tenant_id.in_(_visible(sess, caller, tenant))]
        if name is not None:
            where.append(HostGroup.name == name)
        total = sess.scalar(select(func.count(HostGroup.id)).where(*where))
        found = sess.scalars(select(HostGroup).where(*where).order_by(HostGroup.name, HostGroup.id)
                             .limit(page.limit).offset(page.offset)).all()
        return page.answer([fleet.group_record(sess, group) for group in found], total)


@router.post("/groups", status_code=201)
def create_group(body: NewGroup, request: Request, response: Response, caller: Principal = Depends(auth.principal)):
    """A group; ``children`` are the groups inside it (a cycle is refused)."""
    with db.session(_url(request)) as sess, refusals():
        tenant_id, tenant_name = _new_in(sess, caller, body.tenant)
        audit.note(request, target=body.name, tenant=tenant_name)
        made = fleet.create_group(sess, caller.name, tenant_id, body.name, body.children)
    response.headers["Location"] = "/v1/groups/{}".format(made["id"])
    audit.note(request, result="group {} created".format(body.name))
    return made


@router.get("/groups/{group_id}")
def get_group(request: Request, group_id: int = Path(ge=1, le=2 ** 31), caller: Principal = Depends(auth.principal)):
    with db.session(_url(request)) as sess:
        return fleet.group_record(sess, _group(sess, caller, group_id))


@router.patch("/groups/{group_id}")
def change_group(body: GroupChange, request: Request, group_id: int = Path(ge=1, le=2 ** 31),
                 caller: Principal = Depends(auth.principal)):
    """Rename a group or set the groups inside it."""
    with db.session(_url(request)) as sess, refusals():
        group = _group(sess, caller, group_id, "deployer")
        _changed(request, sess, group.tenant_id, group.name, "group {} changed".format(group.name))
        return fleet.update_group(sess, caller.name, group, name=body.name, children=body.children)


@router.delete("/groups/{group_id}", status_code=204)
def delete_group(request: Request, group_id: int = Path(ge=1, le=2 ** 31), caller: Principal = Depends(auth.principal)):
    with db.session(_url(request)) as sess, refusals():
        group = _group(sess, caller, group_id, "deployer")
        _changed(request, sess, group.tenant_id, group.name, "group {} deleted".format(group.name))
        fleet.delete_group(sess, caller.name, group)
    return Response(status_code=204)


# --------------------------------------------------------------------------- hosts

class HostFields(Strict):
    address: str | None = Field(None, min_length=1, max_length=255)
    ssh_port: int | None = Field(None, ge=1, le=65535)
    ssh_user: str | None = Field(None, min_length=1, max_length=64)
    minion_id: str | None = Field(None, min_length=1, max_length=255)
    parent: str | None = Field(None, min_length=1, max_length=255)
    region: str | None = Field(None, min_length=1, max_length=255)
    cell: str | None = Field(None, min_length=1, max_length=255)
    labels: list[str] | None = Field(None, max_length=1000)
    groups: list[str] | None = Field(None, max_length=1000)


class NewHost(HostFields):
    name: str = Name
    tenant: str | None = TenantField


class HostChange(HostFields):
    name: str | None = Field(None, min_length=1, max_length=255)


def _host(sess, caller, host_id, role="viewer"):
    found = host_rows.one(sess, host_id)
    what = "host {}".format(host_id)
    if found is None:
        raise ApiError(404, "No {}.".format(what))
    tenants.check(caller, found["tenant_id"], role, what)
    return found


@router.get("/hosts")
def list_hosts(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
               name: str | None = Query(None, max_length=255), kind: str | None = Query(None, max_length=16),
               label: str | None = Query(None, max_length=128), group: str | None = Query(None, max_length=255),
               region: str | None = Query(None, max_length=255), cell: str | None = Query(None, max_length=255),
               vars: list[str] = Query([], max_length=20,  # noqa: A002 (the API's word)
                                       description="KEY[.SUBKEY...]:VALUE of a resolved variable"),
               caller: Principal = Depends(auth.principal)):
    """The hosts of your tenants. Filters: tenant, name, kind, label, group (and the groups
    inside it), region, cell, and ``vars=hardware.disk:ssd`` (a resolved value; repeatable)."""
    if kind is not None and kind not in HOST_KINDS:
        raise ApiError(400, "Unknown host kind {!r}; use one of {}.".format(kind, ", ".join(HOST_KINDS)))
    with db.session(_url(request)) as sess, refusals():
        found, total = search.find(sess, _visible(sess, caller, tenant), page.limit, page.offset, var_filters=vars,
                                   name=name, kind=kind, label=label, group=group, region=region, cell=cell)
        return page.answer(host_rows.records(sess, found), total)


@router.post("/hosts", status_code=201)
def create_host(body: NewHost, request: Request, response: Response, caller: Principal = Depends(auth.principal)):
    """A machine that is neither a compute node nor an environment (those are hosts already)."""
    fields = body.model_dump(exclude_unset=True, exclude={"tenant"})
    with db.session(_url(request)) as sess, refusals():
        tenant_id, tenant_name = _new_in(sess, caller, body.tenant)
        audit.note(request, target=body.name, tenant=tenant_name)
        made = fleet.create_host(sess, caller.name, tenant_id, fields)
    response.headers["Location"] = "/v1/hosts/{}".format(made["id"])
    audit.note(request, result="host {} created".format(body.name))
    return made


@router.get("/hosts/{host_id}")
def get_host(request: Request, host_id: int = Path(ge=1, le=2 ** 31), caller: Principal = Depends(auth.principal)):
    with db.session(_url(request)) as sess:
        return host_rows.records(sess, [_host(sess, caller, host_id)])[0]


@router.patch("/hosts/{host_id}")
def change_host(body: HostChange, request: Request, host_id: int = Path(ge=1, le=2 ** 31),
                caller: Principal = Depends(auth.principal)):
    """Change a host: what is given is set (``null`` clears it); labels and groups are replaced."""
    fields = body.model_dump(exclude_unset=True)
    with db.session(_url(request)) as sess, refusals():
        found = _host(sess, caller, host_id, "deployer")
        _changed(request, sess, found["tenant_id"], found["name"], "host {} changed".format(found["name"]))
        return fleet.update_host(sess, caller.name, host_id, found["tenant_id"], fields)


@router.delete("/hosts/{host_id}", status_code=204)
def delete_host(request: Request, host_id: int = Path(ge=1, le=2 ** 31), caller: Principal = Depends(auth.principal)):
    """Delete a machine (a node's or environment's host goes with it: 409)."""
    with db.session(_url(request)) as sess, refusals():
        found = _host(sess, caller, host_id, "deployer")
        _changed(request, sess, found["tenant_id"], found["name"], "host {} deleted".format(found["name"]))
        fleet.delete_host(sess, caller.name, host_id, found["tenant_id"])
    return Response(status_code=204)


# --------------------------------------------------------------------------- variables

class VariablesChange(Strict):
    variables: dict = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list, max_length=1000)


def _target(sess, caller, level, key, role):
    """``(tenant id, object id, name)`` of the object whose variables are asked for."""
    if level == "tenant":
        tenant_id = tenants.tenant_id(sess, key)
        if tenant_id is None or tenant_id not in caller.roles:
            raise ApiError(404, "No tenant named {}.".format(key))
        tenants.check(caller, tenant_id, role, "tenant named {}".format(key))
        return tenant_id, tenant_id, key
    if level == "region":
        region = _region(sess, caller, key, role)
        return region.tenant_id, region.id, region.name
    if level == "cell":
        cell, tenant_id = _cell(sess, caller, key, role)
        return tenant_id, cell.id, cell.name
    if level == "group":
        group = _group(sess, caller, key, role)
        return group.tenant_id, group.id, group.name
    found = _host(sess, caller, key, role)
    return found["tenant_id"], found["id"], found["name"]


def _check_reveal(caller, tenant_id, reveal):
    if reveal and tenants.RANK[caller.role_in(tenant_id)] < tenants.RANK["deployer"]:
        raise ApiError(403, "Your role in this tenant is {}; deployer is needed to read secret variables.".format(
            caller.role_in(tenant_id)))


def _own_variables(request, level, key, caller, reveal):
    with db.session(_url(request)) as sess:
        tenant_id, object_id, name = _target(sess, caller, level, key, "viewer")
        _check_reveal(caller, tenant_id, reveal)
        shown = fleet.variables_record(sess, level, object_id)
        if reveal:
            shown.update(secret_vars.reveal(sess, secrets_crypto.load(_secrets_key(request)), {
                secret: resolve.SecretRef(level, object_id, secret)
                for secret in secret_vars.owned_keys(sess, level, object_id)}))
        return {"level": level, "name": name, "variables": shown}


def _change_variables(request, level, key, caller, body, replace):
    # Secrets are written under the key file's shared lock, held until the commit.
    writing = secrets_crypto.writing(_secrets_key(request)) if body.secrets else contextlib.nullcontext()
    with writing as keyring, db.session(_url(request)) as sess, refusals():
        tenant_id, object_id, name = _target(sess, caller, level, key, "deployer")
        _changed(request, sess, tenant_id, "{} {}".format(level, name), "variables of {} {} changed".format(
            level, name))
        shown = fleet.set_variables(sess, keyring, caller.name, tenant_id, level, object_id, name, body.variables,
                                    body.secrets, body.remove, replace)
    return {"level": level, "name": name, "variables": shown}


def _variables_routes(level, path, key_param):
    """GET (own variables), PUT (replace them) and PATCH (set and remove some) on ``path``."""

    def read(request: Request, key=key_param, reveal_secrets: bool = False,
             caller: Principal = Depends(auth.principal)):
        return _own_variables(request, level, key, caller, reveal_secrets)

    def replace(body: VariablesChange, request: Request, key=key_param, caller: Principal = Depends(auth.principal)):
        return _change_variables(request, level, key, caller, body, replace=True)

    def change(body: VariablesChange, request: Request, key=key_param, caller: Principal = Depends(auth.principal)):
        return _change_variables(request, level, key, caller, body, replace=False)

    read.__doc__ = "The {}'s own variables (secrets masked unless ``reveal_secrets`` and deployer).".format(level)
    replace.__doc__ = "Replace the {}'s variables with ``variables`` and ``secrets``.".format(level)
    change.__doc__ = "Set ``variables`` and ``secrets``, drop ``remove``, of the {}.".format(level)
    for method, function in (("GET", read), ("PUT", replace), ("PATCH", change)):
        function.__annotations__["key"] = str if level == "tenant" else int
        function.__name__ = "{}_{}_variables".format(method.lower(), level)
        router.add_api_route(path, function, methods=[method])


for _level, _path, _param in (("tenant", "/tenants/{key}/variables", Path(min_length=1, max_length=128)),
                              ("region", "/regions/{key}/variables", Path(ge=1, le=2 ** 31)),
                              ("cell", "/cells/{key}/variables", Path(ge=1, le=2 ** 31)),
                              ("group", "/groups/{key}/variables", Path(ge=1, le=2 ** 31))):
    _variables_routes(_level, _path, _param)


@router.get("/hosts/{host_id}/variables")
def host_variables(request: Request, host_id: int = Path(ge=1, le=2 ** 31), resolved: bool = False,
                   reveal_secrets: bool = False, caller: Principal = Depends(auth.principal)):
    """The host's own variables, or with ``resolved=true`` its values from every level and,
    for each key, the level it came from (``provenance``). Secrets are masked unless
    ``reveal_secrets=true`` (deployers and admins)."""
    if not resolved:
        return _own_variables(request, "host", host_id, caller, reveal_secrets)
    with db.session(_url(request)) as sess:
        found = _host(sess, caller, host_id)
        _check_reveal(caller, found["tenant_id"], reveal_secrets)
        values, provenance = resolve.host_variables(sess, found)
        for key, value in values.items():
            if isinstance(value, resolve.SecretRef):
                provenance[key]["secret"] = True
        values = secret_vars.reveal(sess, secrets_crypto.load(_secrets_key(request)), values) \
            if reveal_secrets else secret_vars.masked(values)
    return {"level": "host", "name": found["name"], "resolved": True, "variables": values, "provenance": provenance}


@router.put("/hosts/{host_id}/variables")
def replace_host_variables(body: VariablesChange, request: Request, host_id: int = Path(ge=1, le=2 ** 31),
                           caller: Principal = Depends(auth.principal)):
    """Replace the host's variables with ``variables`` and ``secrets``."""
    return _change_variables(request, "host", host_id, caller, body, replace=True)


@router.patch("/hosts/{host_id}/variables")
def change_host_variables(body: VariablesChange, request: Request, host_id: int = Path(ge=1, le=2 ** 31),
                          caller: Principal = Depends(auth.principal)):
    """Set ``variables`` and ``secrets``, drop ``remove``, of the host."""
    return _change_variables(request, "host", host_id, caller, body, replace=False)


# --------------------------------------------------------------------------- change logs

def _changes_route(level, path, key_param):
    def changes(request: Request, page: Page = Depends(), key=key_param, caller: Principal = Depends(auth.principal)):
        with db.session(_url(request)) as sess:
            _tenant_id, object_id, _name = _target(sess, caller, level, key, "viewer")
            rows, total = changelog.page(sess, level, object_id, page.limit, page.offset)
        return page.answer(rows, total)

    changes.__annotations__["key"] = str if level == "tenant" else int
    changes.__name__ = "{}_changes".format(level)
    changes.__doc__ = "The {}'s change log, newest first: who, when, before, after (secrets masked).".format(level)
    router.add_api_route(path, changes, methods=["GET"])


for _level, _path, _param in (("tenant", "/tenants/{key}/changes", Path(min_length=1, max_length=128)),
                              ("region", "/regions/{key}/changes", Path(ge=1, le=2 ** 31)),
                              ("cell", "/cells/{key}/changes", Path(ge=1, le=2 ** 31)),
                              ("group", "/groups/{key}/changes", Path(ge=1, le=2 ** 31)),
                              ("host", "/hosts/{key}/changes", Path(ge=1, le=2 ** 31))):
    _changes_route(_level, _path, _param)
