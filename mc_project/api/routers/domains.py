"""Domains and their DNS records: ``/v1/domains``, ``/v1/domains/{id}/records`` and the
drift check ``/v1/domains/{id}/check``.

Viewers of a tenant read its domains; deployers change records; admins create and
delete domains and set their NS set. Another tenant's domain answers 404. A bad name,
type or content is 400 and changes nothing; PowerDNS down or refusing is 502 and
changes nothing either (the inventory's transaction is rolled back).
"""

import contextlib

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field
from sqlalchemy import func, select

from mc_project.api import audit, auth, tenants
from mc_project.api.deps import Page, Strict
from mc_project.api.errors import ApiError, refusals
from mc_project.api.tenants import Principal
from mc_project.controller.pdns import PowerDnsError
from mc_project.inventory import db, dns_drift, domains
from mc_project.inventory.models import DEFAULT_TENANT, Domain

router = APIRouter(tags=["dns"])

DOMAIN_REFUSAL = "You may not make domains: you are admin of no tenant."


def Id():  # noqa: N802 (reads as the type it stands for)
    """A path's id; one ``Path`` object each, as FastAPI keeps a parameter's name on it."""
    return Path(ge=1, le=2 ** 31)


NameServers = Field(min_length=1, max_length=13)


@contextlib.contextmanager
def dns_refusals():
    """The inventory's refusals, and PowerDNS down or refusing as 502 (not the caller's
    fault; nothing was changed)."""
    with refusals():
        try:
            yield
        except PowerDnsError as exc:
            raise ApiError(502, str(exc)) from None


def _url(request):
    return request.app.state.url


def _api(request):
    return domains.powerdns(request.app.state.ctl.settings["dns"])


def _domain(sess, caller, domain_id, role="viewer"):
    domain = sess.get(Domain, domain_id)
    what = "domain {}".format(domain_id)
    if domain is None:
        raise ApiError(404, "No {}.".format(what))
    tenants.check(caller, domain.tenant_id, role, what)
    return domain


def _noted(request, sess, domain, target=None):
    audit.note(request, target=target or domain.name, tenant=domains.domain_record(sess, domain)["tenant"])


# --------------------------------------------------------------------------- domains

class NewDomain(Strict):
    name: str = Field(min_length=1, max_length=253)
    nameservers: list[str] = NameServers
    tenant: str | None = Field(None, min_length=1, max_length=128)


class DomainChange(Strict):
    nameservers: list[str] = NameServers


@router.get("/domains")
def list_domains(request: Request, page: Page = Depends(), tenant: str | None = Query(None, max_length=128),
                 name: str | None = Query(None, max_length=255), caller: Principal = Depends(auth.principal)):
    """The domains of your tenants (filters: tenant, name)."""
    with db.session(_url(request)) as sess:
        where = [tenants.visible_tenant_filter(caller, Domain.tenant_id, tenant, sess)]
        if name is not None:
            where.append(Domain.name == name.strip().lower().rstrip("."))
        total = sess.scalar(select(func.count(Domain.id)).where(*where))
        found = sess.scalars(select(Domain).where(*where).order_by(Domain.name).limit(page.limit)
                             .offset(page.offset)).all()
        return page.answer([domains.domain_record(sess, domain) for domain in found], total)


@router.post("/domains", status_code=201)
def create_domain(body: NewDomain, request: Request, response: Response, caller: Principal = Depends(auth.principal)):
    """A domain with its NS set, made in PowerDNS as a zone. A zone PowerDNS has already is
    taken over by an admin of tenant default (``taken_over`` true, its NS set replaced);
    for anyone else it is 409."""
    with db.session(_url(request)) as sess, dns_refusals():
        tenant_id, tenant_name = tenants.tenant_for_new(sess, caller, body.tenant, "admin", DOMAIN_REFUSAL)
        audit.note(request, target=body.name, tenant=tenant_name)
        operator = tenants.tenant_id(sess, DEFAULT_TENANT) in caller.tenant_ids("admin")
        made, taken_over = domains.create_domain(sess, _api(request), caller.name, tenant_id, body.name,
                                                 body.nameservers, may_take_over=operator)
    response.headers["Location"] = "/v1/domains/{}".format(made["id"])
    audit.note(request, result="domain {} {}".format(made["name"], "taken over" if taken_over else "created"))
    return dict(made, taken_over=taken_over)


@router.get("/domains/{domain_id}")
def get_domain(request: Request, domain_id: int = Id(), caller: Principal = Depends(auth.principal)):
    with db.session(_url(request)) as sess:
        return domains.domain_record(sess, _domain(sess, caller, domain_id))


@router.patch("/domains/{domain_id}")
def change_domain(body: DomainChange, request: Request, domain_id: int = Id(),
                  caller: Principal = Depends(auth.principal)):
    """Set the domain's NS set."""
    with db.session(_url(request)) as sess, dns_refusals():
        domain = _domain(sess, caller, domain_id, "admin")
        _noted(request, sess, domain)
        changed = domains.change_nameservers(sess, _api(request), caller.name, domain, body.nameservers)
    audit.note(request, result="domain {} name servers set".format(changed["name"]))
    return changed


@router.delete("/domains/{domain_id}", status_code=204)
def delete_domain(request: Request, domain_id: int = Id(), caller: Principal = Depends(auth.principal)):
    """Delete a domain, its records and its zone (409 while environments have records in it)."""
    with db.session(_url(request)) as sess, dns_refusals():
        domain = _domain(sess, caller, domain_id, "admin")
        _noted(request, sess, domain)
        domains.delete_domain(sess, _api(request), caller.name, domain)
    audit.note(request, result="domain deleted")
    return Response(status_code=204)


@router.get("/domains/{domain_id}/check")
def check_domain(request: Request, domain_id: int = Id(), caller: Principal = Depends(auth.principal)):
    """Drift between the inventory and PowerDNS: rrsets missing from PowerDNS, missing from
    the inventory, and differing (``in_sync`` false when there is any)."""
    with db.session(_url(request)) as sess, dns_refusals():
        return dns_drift.check(sess, _api(request), _domain(sess, caller, domain_id))


@router.get("/domains/{domain_id}/changes")
def domain_changes(request: Request, domain_id: int = Id(), page: Page = Depends(),
                   caller: Principal = Depends(auth.principal)):
    """The change log of the domain and its records, newest first: who, when, before, after."""
    with db.session(_url(request)) as sess:
        items, total = domains.changes_page(sess, _domain(sess, caller, domain_id), page.limit, page.offset)
    return page.answer(items, total)


# --------------------------------------------------------------------------- records

class NewRecord(Strict):
    name: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=16)
    content: str = Field(min_length=1, max_length=4096)
    ttl: int | None = Field(None, ge=1, le=2 ** 31 - 1)


class RecordChange(Strict):
    content: str | None = Field(None, min_length=1, max_length=4096)
    ttl: int | None = Field(None, ge=1, le=2 ** 31 - 1)


@router.get("/domains/{domain_id}/records")
def list_records(request: Request, domain_id: int = Id(), page: Page = Depends(),
                 name: str | None = Query(None, max_length=255), type: str | None = Query(None, max_length=16),  # noqa: A002
                 content: str | None = Query(None, max_length=4096), caller: Principal = Depends(auth.principal)):
    """The domain's records, the environments' too (``managed_by``); filters: name, type,
    content (with type)."""
    with db.session(_url(request)) as sess, dns_refusals():
        domain = _domain(sess, caller, domain_id)
        items, total = domains.record_page(sess, domain, page.limit, page.offset, name=name, rtype=type,
                                           content=content)
        return page.answer(items, total)


@router.post("/domains/{domain_id}/records", status_code=201)
def add_record(body: NewRecord, request: Request, response: Response, domain_id: int = Id(),
               caller: Principal = Depends(auth.principal)):
    """Add a record (A, AAAA, CNAME, TXT, MX, SRV, SSHFP) named in full inside the domain."""
    with db.session(_url(request)) as sess, dns_refusals():
        domain = _domain(sess, caller, domain_id, "deployer")
        _noted(request, sess, domain, "{} {}".format(body.name, body.type))
        made = domains.add_record(sess, _api(request), caller.name, domain, body.name, body.type, body.content,
                                  body.ttl)
    response.headers["Location"] = "/v1/domains/{}/records/{}".format(domain_id, made["id"])
    audit.note(request, result="{} {} record added".format(made["name"], made["type"]))
    return made


@router.get("/domains/{domain_id}/records/{record_id}")
def get_record(request: Request, domain_id: int = Id(), record_id: int = Id(),
               caller: Principal = Depends(auth.principal)):
    with db.session(_url(request)) as sess, dns_refusals():
        domain = _domain(sess, caller, domain_id)
        return domains.views(sess, domain, [domains.record_of(sess, domain, record_id)])[0]


@router.patch("/domains/{domain_id}/records/{record_id}")
def change_record(body: RecordChange, request: Request, domain_id: int = Id(), record_id: int = Id(),
                  caller: Principal = Depends(auth.principal)):
    """Change a record's content or TTL (a TTL is its rrset's: every record of its name and type)."""
    with db.session(_url(request)) as sess, dns_refusals():
        domain = _domain(sess, caller, domain_id, "deployer")
        row = domains.record_of(sess, domain, record_id)
        _noted(request, sess, domain, "{} {}".format(row.name, row.type))
        changed = domains.change_record(sess, _api(request), caller.name, domain, row, body.content, body.ttl)
    audit.note(request, result="{} {} record changed".format(changed["name"], changed["type"]))
    return changed


@router.delete("/domains/{domain_id}/records/{record_id}", status_code=204)
def delete_record(request: Request, domain_id: int = Id(), record_id: int = Id(),
                  caller: Principal = Depends(auth.principal)):
    with db.session(_url(request)) as sess, dns_refusals():
        domain = _domain(sess, caller, domain_id, "deployer")
        row = domains.record_of(sess, domain, record_id)
        _noted(request, sess, domain, "{} {}".format(row.name, row.type))
        domains.delete_record(sess, _api(request), caller.name, domain, row)
    audit.note(request, result="record deleted")
    return Response(status_code=204)
