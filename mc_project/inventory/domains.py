"""Domains of a tenant and their DNS records, changed in the inventory and PowerDNS together.

Every change is checked first (``dns_rules``; one sentence, nothing changed), then
written to the inventory and flushed (the database's own refusals come here), then
sent to PowerDNS last: when PowerDNS refuses or is down its ``PowerDnsError`` rolls
the caller's transaction back, so the inventory stays as it was. Each write begins
by touching its domain's row (``Domain.changed``), so two writers of one zone take
turns and each sends PowerDNS the whole rrset it read.

A domain's records are the ``DnsRecord`` rows of its zone. Those the controller made
for an environment (its A, wildcard A and SSHFP records) are listed with
``managed_by: environment``: they change with the environment, so they are not
edited by hand, and the names they cover (the environment's name and everything
under its wildcard) take no hand-made record.
"""

import datetime

from sqlalchemy import and_, func, or_, select, update

from mc_project.controller import pdns
from mc_project.errors import CorpusError
from mc_project.inventory import changelog, dns_rules
from mc_project.inventory.fleet_models import ChangeRecord
from mc_project.inventory.fleet_rules import Conflict, NotFound
from mc_project.inventory.models import DEFAULT_TENANT, DnsRecord, Domain, Environment, Tenant, utcnow


def powerdns(dns_settings):
    """The PowerDNS client of the controller's ``dns`` settings."""
    if not dns_settings.get("api_url"):
        # The controller's configuration, not a failing PowerDNS: a refusal (409), not a 502.
        raise Conflict("No PowerDNS API URL is configured (corpus: dns: api_url); domains cannot be changed.")
    return pdns.PowerDns(dns_settings["api_url"], dns_settings.get("api_key"),
                         server_id=dns_settings.get("server_id", "localhost"))


def zone_of(domain):
    return domain.name + "."


# --------------------------------------------------------------------------- reading

def domain_record(sess, domain):
    tenant = sess.scalar(select(Tenant.name).where(Tenant.id == domain.tenant_id))
    count = sess.scalar(select(func.count(DnsRecord.id)).where(DnsRecord.zone == zone_of(domain)))
    return {"id": domain.id, "name": domain.name, "tenant": tenant, "nameservers": list(domain.nameservers),
            "records": count, "created": _iso(domain.created)}


def records_query(domain, name=None, rtype=None, content=None):
    where = [DnsRecord.zone == zone_of(domain)]
    if name is not None:
        where.append(DnsRecord.name == dns_rules.record_name(name, domain.name))
    if rtype is not None:
        where.append(DnsRecord.type == dns_rules.record_type(rtype))
    if content is not None and rtype is None:
        raise CorpusError("A content is read by its type: give the type too.")
    if content is not None:
        where.append(DnsRecord.content == dns_rules.content(dns_rules.record_type(rtype), content))
    return where


def record_page(sess, domain, limit, offset, **filters):
    """``(records as the API shows them, total)`` of a domain, by name, type and content."""
    where = records_query(domain, **filters)
    total = sess.scalar(select(func.count(DnsRecord.id)).where(*where))
    rows = sess.scalars(select(DnsRecord).where(*where).order_by(DnsRecord.name, DnsRecord.type, DnsRecord.content)
                        .limit(limit).offset(offset)).all()
    return views(sess, domain, rows), total


def views(sess, domain, rows):
    env_ids = {row.environment_id for row in rows if row.environment_id is not None}
    envs = {}
    if env_ids:
        envs = {env_id: (name, tenant_id) for env_id, name, tenant_id in sess.execute(
            select(Environment.id, Environment.name, Environment.tenant_id).where(Environment.id.in_(env_ids)))}
    return [view(row, domain, envs.get(row.environment_id)) for row in rows]


def view(row, domain, env=None):
    """A record as the API shows it; an environment's is named only to its own tenant (the
    controller's zone holds every tenant's environments)."""
    shown = {"id": row.id, "domain": domain.name, "name": row.name, "type": row.type, "ttl": row.ttl,
             "content": row.content, "managed_by": "hand" if row.environment_id is None else "environment"}
    if row.environment_id is not None:
        shown["environment"] = env[0] if env is not None and env[1] == domain.tenant_id else None
    return shown


def record_of(sess, domain, record_id):
    row = sess.get(DnsRecord, record_id)
    if row is None or row.zone != zone_of(domain):
        raise NotFound("No record {} in domain {}.".format(record_id, domain.name))
    return row


def changes_page(sess, domain, limit, offset):
    """``(changes, total)`` of a domain and of its records, newest first."""
    where = (ChangeRecord.tenant_id == domain.tenant_id, or_(
        and_(ChangeRecord.object_type == "domain", ChangeRecord.object_id == domain.id),
        and_(ChangeRecord.object_type == "dns_record", or_(
            ChangeRecord.object_name == domain.name,
            ChangeRecord.object_name.like("%." + _escaped(domain.name), escape="\\")))))
    total = sess.scalar(select(func.count(ChangeRecord.id)).where(*where))
    found = sess.scalars(select(ChangeRecord).where(*where).order_by(ChangeRecord.id.desc())
                         .limit(limit).offset(offset)).all()
    return [{"id": row.id, "at": _iso(row.at), "user": row.user, "object": row.object_type,
             "name": row.object_name, "action": row.action, "before": row.before, "after": row.after}
            for row in found], total


# --------------------------------------------------------------------------- domains

def _lock(sess, domain):
    sess.execute(update(Domain).where(Domain.id == domain.id).values(changed=utcnow()))


def _refuse_nesting(sess, name):
    """A zone inside another (or around one) would split its names between two owners."""
    for other in sess.scalars(select(Domain.name).where(or_(
            Domain.name.like("%." + _escaped(name), escape="\\"),
            Domain.name.in_(_parents(name))))):
        inner, outer = (other, name) if other.endswith("." + name) else (name, other)
        raise Conflict("Domain {} is inside domain {}; a domain cannot hold another.".format(inner, outer))


def _parents(name):
    labels = name.split(".")
    return [".".join(labels[index:]) for index in range(1, len(labels) - 1)]


def _escaped(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def create_domain(sess, api, actor, tenant_id, name, nameservers, may_take_over=False):
    """A domain and its PowerDNS zone. A zone PowerDNS has already (the controller's own
    zone, say) is taken over when ``may_take_over`` (the controller's operators): its NS
    set becomes the one given, its records stay (the drift check shows those the inventory
    does not hold). Returns ``(record, taken_over)``."""
    name = dns_rules.domain_name(name)
    nameservers = dns_rules.nameservers(nameservers)
    if sess.scalar(select(Domain.id).where(Domain.name == name)) is not None:
        raise Conflict("Domain {} already exists.".format(name))
    _refuse_nesting(sess, name)
    domain = Domain(tenant_id=tenant_id, name=name, nameservers=nameservers)
    sess.add(domain)
    sess.flush()
    after = domain_record(sess, domain)
    changelog.record(sess, actor, tenant_id, "domain", domain.id, name, None, after)
    sess.flush()
    taken_over = api.zone_exists(name)
    if taken_over and not may_take_over:
        # A zone made outside the inventory (the environments' one, or another user's of
        # the same PowerDNS) is not any tenant's to claim.
        raise Conflict("PowerDNS already serves zone {}; only an admin of tenant {} may take it over.".format(
            name, DEFAULT_TENANT))
    if taken_over:
        api.set_nameservers(name, nameservers)
    else:
        api.ensure_zone(name, nameservers)
    return after, taken_over


def change_nameservers(sess, api, actor, domain, nameservers):
    nameservers = dns_rules.nameservers(nameservers)
    _lock(sess, domain)
    before = domain_record(sess, domain)
    domain.nameservers = nameservers
    sess.flush()
    after = domain_record(sess, domain)
    changelog.record(sess, actor, domain.tenant_id, "domain", domain.id, domain.name, before, after)
    api.set_nameservers(domain.name, nameservers)
    return after


def delete_domain(sess, api, actor, domain):
    """Delete a domain, its records and its zone (409 while environments have records in it)."""
    _lock(sess, domain)
    zone = zone_of(domain)
    env_names = sess.scalars(select(Environment.name).join(DnsRecord, DnsRecord.environment_id == Environment.id)
                             .where(DnsRecord.zone == zone).distinct().order_by(Environment.name)).all()
    if env_names:
        raise Conflict("Domain {} holds the records of {} environment(s) ({}); destroy them first.".format(
            domain.name, len(env_names), ", ".join(env_names[:5])))
    before = domain_record(sess, domain)
    for row in sess.scalars(select(DnsRecord).where(DnsRecord.zone == zone)):
        sess.delete(row)
    sess.delete(domain)
    changelog.record(sess, actor, domain.tenant_id, "domain", domain.id, domain.name, before, None)
    sess.flush()
    api.delete_zone(domain.name)


# --------------------------------------------------------------------------- records

def _refuse_environment_name(sess, domain, name):
    for env_name, env_tenant, record_name in sess.execute(
            select(Environment.name, Environment.tenant_id, DnsRecord.name)
            .join(Environment, Environment.id == DnsRecord.environment_id)
            .where(DnsRecord.zone == zone_of(domain)).distinct()):
        base = record_name[2:] if record_name.startswith("*.") else None
        if name == record_name or (base is not None and (name == base or name.endswith("." + base))):
            owner = "environment {}".format(env_name) if env_tenant == domain.tenant_id else "an environment"
            raise Conflict("{} is a name of {}: its records are made and removed with it.".format(name, owner))


def _rrset(sess, domain, name, rtype):
    return list(sess.scalars(select(DnsRecord).where(DnsRecord.zone == zone_of(domain), DnsRecord.name == name,
                                                     DnsRecord.type == rtype).order_by(DnsRecord.id)))


def _types_at(sess, domain, name, leaving=None):
    return {rtype for record_id, rtype in sess.execute(select(DnsRecord.id, DnsRecord.type).where(
        DnsRecord.zone == zone_of(domain), DnsRecord.name == name)) if record_id != leaving}


def _push(api, domain, name, rtype, rows, ttl=None):
    """PowerDNS's rrset ``name``/``rtype`` set to exactly ``rows`` (removed when none are left)."""
    if rows:
        api.add_records(domain.name, [{"name": name, "type": rtype, "ttl": ttl or rows[0].ttl,
                                       "contents": sorted(row.content for row in rows)}])
    else:
        api.remove_records(domain.name, [(name, rtype)])


def _refuse_environment_record(row):
    if row.environment_id is not None:
        raise Conflict("Record {} ({} {}) is made by the controller for an environment; it changes with the "
                       "environment, not by hand.".format(row.id, row.name, row.type))


def _checked(domain, name, rtype, content, ttl):
    name = dns_rules.record_name(name, domain.name)
    rtype = dns_rules.record_type(rtype)
    if rtype == "SRV":
        dns_rules.check_srv_name(name)
    return name, rtype, dns_rules.content(rtype, content), dns_rules.ttl(ttl)


def _record_log(row):
    return {"name": row.name, "type": row.type, "ttl": row.ttl, "content": row.content}


def add_record(sess, api, actor, domain, name, rtype, content, ttl=None):
    """Add one record; its TTL becomes its rrset's (DNS has one TTL per name and type)."""
    name, rtype, content, ttl = _checked(domain, name, rtype, content, ttl)
    _lock(sess, domain)
    _refuse_environment_name(sess, domain, name)
    dns_rules.check_cname_alone(name, rtype, domain.name, _types_at(sess, domain, name))
    if sess.scalar(select(DnsRecord.id).where(DnsRecord.name == name, DnsRecord.type == rtype,
                                              DnsRecord.content == content)) is not None:
        raise Conflict("The {} record {} of {} already exists.".format(rtype, content, name))
    row = DnsRecord(zone=zone_of(domain), name=name, type=rtype, content=content, ttl=ttl)
    sess.add(row)
    rows = _rrset(sess, domain, name, rtype)
    for each in rows:
        each.ttl = ttl
    sess.flush()
    changelog.record(sess, actor, domain.tenant_id, "dns_record", row.id, name, None, _record_log(row))
    sess.flush()
    _push(api, domain, name, rtype, rows)
    return view(row, domain)


def change_record(sess, api, actor, domain, row, content=None, ttl=None):
    """Change a hand-made record's content or TTL (the TTL is its rrset's)."""
    _refuse_environment_record(row)
    if content is None and ttl is None:
        raise CorpusError("Nothing to change: give a content or a TTL.")
    _name, _rtype, content, ttl = _checked(domain, row.name, row.type, row.content if content is None else content,
                                           row.ttl if ttl is None else ttl)
    _lock(sess, domain)
    before = _record_log(row)
    if content != row.content and sess.scalar(select(DnsRecord.id).where(
            DnsRecord.name == row.name, DnsRecord.type == row.type, DnsRecord.content == content)) is not None:
        raise Conflict("The {} record {} of {} already exists.".format(row.type, content, row.name))
    row.content = content
    rows = _rrset(sess, domain, row.name, row.type)
    for each in rows:
        each.ttl = ttl
    sess.flush()
    changelog.record(sess, actor, domain.tenant_id, "dns_record", row.id, row.name, before, _record_log(row))
    sess.flush()
    _push(api, domain, row.name, row.type, rows)
    return view(row, domain)


def delete_record(sess, api, actor, domain, row):
    _refuse_environment_record(row)
    _lock(sess, domain)
    before = _record_log(row)
    sess.delete(row)
    sess.flush()
    changelog.record(sess, actor, domain.tenant_id, "dns_record", row.id, row.name, before, None)
    sess.flush()
    _push(api, domain, row.name, row.type, _rrset(sess, domain, row.name, row.type))


def _iso(moment):
    if moment is None:
        return None
    # SQLite hands back naive datetimes, stored as UTC.
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.timezone.utc)).isoformat()
