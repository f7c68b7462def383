"""``pdns:*``: an environment's DNS records, in PowerDNS and in the inventory."""

from sqlalchemy import delete, or_, select

from mc_project.controller import credentials, envs, pdns
from mc_project.errors import CorpusError
from mc_project.inventory import db
from mc_project.inventory.models import DnsRecord, Domain


def _dns(ctl):
    dns = ctl.settings["dns"]
    if not dns.get("api_url"):
        return None, None
    return pdns.PowerDns(dns["api_url"], dns.get("api_key"), server_id=dns.get("server_id", "localhost")), dns


def zone_of(domain, dns):
    """The zone a domain's records go in: the managed zone, or the domain's own zone."""
    managed = dns["zone"].rstrip(".")
    return dns["zone"] if domain == managed or domain.endswith("." + managed) else domain + "."


def add_dns_records(ctl, ctx):
    clip, node = ctx.clipboard, ctx.clipboard["node"]
    api, dns = _dns(ctl)
    if api is None:
        ctx.log("no DNS server is configured: no records registered")
        return
    sshfp = credentials.sshfp_records(clip.get("host_keys") or [])
    ctx.undo_data.setdefault("records", [])
    _refuse_hand_made(ctl, envs.domains(ctx.clipboard))
    for domain in envs.domains(ctx.clipboard):
        zone = zone_of(domain, dns)
        records = [{"name": domain, "type": "A", "contents": [node["address"]], "ttl": dns["ttl"]},
                   {"name": "*." + domain, "type": "A", "contents": [node["address"]], "ttl": dns["ttl"]}]
        if sshfp:
            records.append({"name": domain, "type": "SSHFP", "contents": sshfp, "ttl": dns["ttl"]})
        api.ensure_zone(zone)
        ctx.undo_data["records"] += [[zone, r["name"], r["type"]] for r in records]
        api.add_records(zone, records)
        with db.session(ctl.url) as sess:
            env = envs.environment(sess, clip["env_name"])
            for record in records:
                for content in record["contents"]:
                    sess.merge(_dns_row(sess, zone, record["name"], record["type"], content, record["ttl"],
                                        env.id))
    ctx.log("DNS: {}".format(", ".join("{} {}".format(n, t) for _z, n, t in ctx.undo_data["records"])))


def _refuse_hand_made(ctl, domains):
    """The environment's names must hold no record made through a domain's API: its rrsets
    would replace them in PowerDNS and the inventory would still list them."""
    names = [name for domain in domains for name in (domain, "*." + domain)]
    with db.session(ctl.url) as sess:
        found = sess.execute(select(DnsRecord.name, DnsRecord.type).where(
            DnsRecord.environment_id.is_(None),
            or_(DnsRecord.name.in_(names), *(DnsRecord.name.like("%." + _like(domain), escape="\\")
                                             for domain in domains)))).first()
    if found is not None:
        raise CorpusError("{} already holds a {} record made by hand (corpus dns); remove it or choose another "
                          "name.".format(found[0], found[1]))


def _like(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _dns_row(sess, zone, name, rtype, content, ttl, env_id):
    row = sess.scalar(select(DnsRecord).where(DnsRecord.name == name, DnsRecord.type == rtype,
                                              DnsRecord.content == content))
    return row or DnsRecord(zone=zone, name=name, type=rtype, content=content, ttl=ttl,
                            environment_id=env_id)


def remove_dns_records(ctl, ctx):
    clip = ctx.clipboard
    with db.session(ctl.url) as sess:
        env = envs.find_environment(sess, clip["env_name"])
        rows = [] if env is None else list(sess.scalars(select(DnsRecord).where(
            DnsRecord.environment_id == env.id)))
        if clip.get("new_domain"):
            rows = [row for row in rows if row.name in (clip["new_domain"], "*." + clip["new_domain"])]
        names = {(row.zone, row.name, row.type) for row in rows}
        ids = [row.id for row in rows]
    names |= {tuple(record) for record in ctx.undo_data.get("records", [])}
    api, dns = _dns(ctl)
    if api is not None:
        for zone in sorted({zone for zone, _name, _type in names}):
            api.remove_records(zone, sorted((name, rtype) for z, name, rtype in names if z == zone))
    with db.session(ctl.url) as sess:
        sess.execute(delete(DnsRecord).where(DnsRecord.id.in_(ids)))
    if api is not None:
        _remove_emptied_zones(ctl, api, dns, {zone for zone, _name, _type in names})


def _remove_emptied_zones(ctl, api, dns, zones):
    """Delete the zones ``add_dns_records`` made for an environment's own domain once nothing but
    their SOA and NS is left: an empty zone left behind would still answer for its names, and
    hide the records of an enclosing domain made later. The managed zone, an inventory domain's
    zone and a zone holding anything else stay."""
    managed = pdns.absolute(dns["zone"])
    with db.session(ctl.url) as sess:
        kept = {pdns.absolute(name) for name in sess.scalars(select(Domain.name))}
        used = set(sess.scalars(select(DnsRecord.zone).distinct()))
    for zone in sorted(zones):
        zone = pdns.absolute(zone)
        if zone == managed or zone in kept or zone in used or not api.zone_exists(zone):
            continue
        if all(rrset["type"] in ("SOA", "NS") for rrset in api.records(zone)):
            api.delete_zone(zone)


STEPS = {
    "pdns:add_records": (add_dns_records, remove_dns_records),
    "pdns:remove_records": (remove_dns_records, None),
}
