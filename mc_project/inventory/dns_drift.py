"""Drift between a domain in the inventory and its zone in PowerDNS.

The inventory's side is the domain's NS set and the ``DnsRecord`` rows of its zone
(hand-made and the environments'); PowerDNS's side is the zone's rrsets, read back
through its API (SOA aside: PowerDNS keeps it). They are compared per rrset (name and
type): contents as dnspython reads them (so ``2001:DB8::1`` and ``2001:db8::1`` are one
record) and the TTL (except the NS set's, which PowerDNS may set itself). An rrset is
``missing_from_powerdns``, ``missing_from_inventory`` or ``differing``.
"""

from sqlalchemy import select

from mc_project.inventory import dns_rules, domains
from mc_project.inventory.models import DnsRecord

IGNORED_TYPES = ("SOA",)


def _side(ttl, contents):
    return {"ttl": ttl, "contents": sorted(contents)}


def inventory_rrsets(sess, domain):
    """``{(name, type): {"ttl", "contents"}}`` of the domain in the inventory (names absolute)."""
    found = {(domain.name + ".", "NS"): _side(None, [ns + "." for ns in domain.nameservers])}
    for row in sess.scalars(select(DnsRecord).where(DnsRecord.zone == domains.zone_of(domain))):
        rrset = found.setdefault((row.name.rstrip(".") + ".", row.type), _side(row.ttl, []))
        rrset["contents"] = sorted(rrset["contents"] + [row.content])
    return found


def powerdns_rrsets(api, domain):
    """The same of PowerDNS's zone, or None when PowerDNS has no such zone."""
    if not api.zone_exists(domain.name):
        return None
    return {(rrset["name"], rrset["type"]): _side(rrset["ttl"], rrset["contents"])
            for rrset in api.records(domain.name) if rrset["type"] not in IGNORED_TYPES and rrset["contents"]}


def _same(rtype, ours, theirs):
    if rtype != "NS" and ours["ttl"] != theirs["ttl"]:
        return False
    return sorted(dns_rules.canonical(rtype, text) for text in ours["contents"]) == sorted(
        dns_rules.canonical(rtype, text) for text in theirs["contents"])


def check(sess, api, domain):
    """The drift report of ``domain``: ``in_sync`` and the rrsets that are not."""
    ours = inventory_rrsets(sess, domain)
    theirs = powerdns_rrsets(api, domain)
    report = {"domain": domain.name, "zone_in_powerdns": theirs is not None, "missing_from_powerdns": [],
              "missing_from_inventory": [], "differing": []}
    theirs = theirs or {}
    for key in sorted(set(ours) | set(theirs)):
        name, rtype = key
        entry = {"name": name.rstrip("."), "type": rtype, "inventory": ours.get(key), "powerdns": theirs.get(key)}
        if key not in theirs:
            report["missing_from_powerdns"].append(entry)
        elif key not in ours:
            report["missing_from_inventory"].append(entry)
        elif not _same(rtype, ours[key], theirs[key]):
            report["differing"].append(entry)
    report["in_sync"] = not (report["missing_from_powerdns"] or report["missing_from_inventory"]
                             or report["differing"])
    return report
