"""``corpus domains ...`` and ``corpus dns ...``: a tenant's domains and their records.

Domains are named (``example.org``); records by NAME TYPE, and CONTENT when the name
and type hold more than one (``corpus dns remove example.org www.example.org A
192.0.2.10``). ``corpus dns check [DOMAIN]`` compares the inventory with PowerDNS and
exits 1 when they drifted apart.
"""

import typer

from .errors import EXIT_BAD_INPUT, EXIT_FAILED, CliError
from .state import state_of

domains_app = typer.Typer(name="domains", help="Domains (DNS zones) of your tenants and their name servers.",
                          no_args_is_help=True, add_completion=False, rich_markup_mode=None)
dns_app = typer.Typer(name="dns", help="DNS records of a domain, kept in step with PowerDNS.",
                      no_args_is_help=True, add_completion=False, rich_markup_mode=None)

DOMAIN_COLUMNS = ["name", "tenant", "nameservers", "records"]
RECORD_COLUMNS = ["id", "name", "type", "ttl", "content", "managed_by", "environment"]
PAGE = 500


def register(app):
    app.add_typer(domains_app, name="domains")
    app.add_typer(dns_app, name="dns")


def domain_path(client, name):
    found = client.get("/v1/domains", name=name).get("items") or []
    if not found:
        raise CliError("No domain named {}".format(name), EXIT_BAD_INPUT, 404)
    return "/v1/domains/{}".format(found[0]["id"])


def record_path(client, domain, name, rtype, content=None):
    """The path of the one record NAME TYPE (CONTENT) of ``domain``."""
    path = domain_path(client, domain)
    found = client.get(path + "/records", name=name, type=rtype, content=content).get("items") or []
    if not found:
        raise CliError("No {} record {}{} in domain {}".format(rtype.upper(), name, " " + content if content else "",
                                                                domain), EXIT_BAD_INPUT, 404)
    if len(found) > 1:
        raise CliError("{} {} records are named {}; give the CONTENT of the one you mean".format(
            len(found), rtype.upper(), name), EXIT_BAD_INPUT)
    return "{}/records/{}".format(path, found[0]["id"])


def _all(client, path, **filters):
    items, offset = [], 0
    while True:
        page = client.paged(path, limit=PAGE, offset=offset, **filters)
        items += page.get("items") or []
        offset += PAGE
        if offset >= page.get("total", 0):
            return items


# --------------------------------------------------------------------------- domains

@domains_app.command("list")
def list_domains(ctx: typer.Context, tenant: str = typer.Option(None, "--tenant"),
                 limit: int = typer.Option(None, "--limit", min=1), offset: int = typer.Option(0, "--offset", min=0)):
    """Your tenants' domains."""
    state = state_of(ctx)
    page = state.client.paged("/v1/domains", limit=limit, offset=offset, tenant=tenant)
    state.output.result(page, lambda data: state.output.table(data.get("items") or [], columns=DOMAIN_COLUMNS,
                                                               empty="No domains."))


@domains_app.command("show")
def show_domain(ctx: typer.Context, name: str = typer.Argument(...)):
    """A domain: its tenant, name servers, number of records."""
    state = state_of(ctx)
    record = state.client.get(domain_path(state.client, name))
    state.output.result(record, lambda data: state.output.fields(data))


@domains_app.command("add")
def add_domain(ctx: typer.Context, name: str = typer.Argument(...),
               ns: list[str] = typer.Option(None, "--ns", help="A name server of the domain (repeatable; one at "
                                                                "least)."),
               tenant: str = typer.Option(None, "--tenant")):
    """Add a domain (admins): its zone is made in PowerDNS, or taken over if PowerDNS has it."""
    state = state_of(ctx)
    if not ns:
        raise CliError("A domain needs its name servers: give --ns NAME at least once", EXIT_BAD_INPUT)
    body = {"name": name, "nameservers": list(ns)}
    if tenant:
        body["tenant"] = tenant
    made = state.client.post("/v1/domains", body)
    state.output.result(made, lambda data: state.output.note("Domain {} {}.".format(
        data["name"], "taken over from PowerDNS" if data.get("taken_over") else "added")))


@domains_app.command("change")
def change_domain(ctx: typer.Context, name: str = typer.Argument(...),
                  ns: list[str] = typer.Option(None, "--ns", help="The name servers (replace them all).")):
    """Set a domain's name servers (admins)."""
    state = state_of(ctx)
    if not ns:
        raise CliError("Nothing to change: give the name servers with --ns", EXIT_BAD_INPUT)
    changed = state.client.request("PATCH", domain_path(state.client, name), json_body={"nameservers": list(ns)})
    state.output.result(changed, lambda data: state.output.fields(data))


@domains_app.command("remove")
def remove_domain(ctx: typer.Context, name: str = typer.Argument(...)):
    """Remove a domain, its records and its PowerDNS zone (admins)."""
    state = state_of(ctx)
    state.client.delete(domain_path(state.client, name))
    state.output.result({"removed": name}, lambda data: state.output.note("Domain {} removed.".format(name)))


@domains_app.command("changes")
def domain_changes(ctx: typer.Context, name: str = typer.Argument(...),
                   limit: int = typer.Option(None, "--limit", min=1), offset: int = typer.Option(0, "--offset", min=0)):
    """The change log of a domain and its records, newest first."""
    state = state_of(ctx)
    page = state.client.paged(domain_path(state.client, name) + "/changes", limit=limit, offset=offset)
    state.output.result(page, lambda data: state.output.table(
        data.get("items") or [], columns=["at", "user", "action", "name", "before", "after"], empty="No changes."))


# --------------------------------------------------------------------------- records

@dns_app.command("list")
def list_records(ctx: typer.Context, domain: str = typer.Argument(...),
                 name: str = typer.Option(None, "--name", help="Records of this full name (or @)."),
                 rtype: str = typer.Option(None, "--type", help="Records of this type."),
                 limit: int = typer.Option(None, "--limit", min=1), offset: int = typer.Option(0, "--offset", min=0)):
    """A domain's records, the environments' ones too (managed by the controller)."""
    state = state_of(ctx)
    page = state.client.paged(domain_path(state.client, domain) + "/records", limit=limit, offset=offset,
                              name=name, type=rtype)
    state.output.result(page, lambda data: state.output.table(data.get("items") or [], columns=RECORD_COLUMNS,
                                                               empty="No records."))


@dns_app.command("add")
def add_record(ctx: typer.Context, domain: str = typer.Argument(...),
               name: str = typer.Argument(..., help="The record's full name (www.example.org), or @."),
               rtype: str = typer.Argument(..., metavar="TYPE", help="A, AAAA, CNAME, TXT, MX, SRV or SSHFP."),
               content: str = typer.Argument(..., help="e.g. 192.0.2.10, '10 mail.example.org', 'v=spf1 -all'."),
               ttl: int = typer.Option(None, "--ttl", min=1, help="Seconds (the TTL of every record of this name "
                                                                   "and type).")):
    """Add a record to a domain, in the inventory and PowerDNS together."""
    state = state_of(ctx)
    body = {"name": name, "type": rtype, "content": content}
    if ttl is not None:
        body["ttl"] = ttl
    made = state.client.post(domain_path(state.client, domain) + "/records", body)
    state.output.result(made, lambda data: state.output.note("{} {} {} added.".format(
        data["name"], data["type"], data["content"])))


@dns_app.command("change")
def change_record(ctx: typer.Context, domain: str = typer.Argument(...), name: str = typer.Argument(...),
                  rtype: str = typer.Argument(..., metavar="TYPE"),
                  content: str = typer.Argument(None, help="Its content, when NAME TYPE holds several."),
                  new_content: str = typer.Option(None, "--content", help="The new content."),
                  ttl: int = typer.Option(None, "--ttl", min=1, help="The new TTL (of all records of NAME TYPE).")):
    """Change a record's content or TTL."""
    state = state_of(ctx)
    body = {key: value for key, value in (("content", new_content), ("ttl", ttl)) if value is not None}
    if not body:
        raise CliError("Nothing to change: give --content or --ttl", EXIT_BAD_INPUT)
    changed = state.client.request("PATCH", record_path(state.client, domain, name, rtype, content), json_body=body)
    state.output.result(changed, lambda data: state.output.fields(data))


@dns_app.command("remove")
def remove_record(ctx: typer.Context, domain: str = typer.Argument(...), name: str = typer.Argument(...),
                  rtype: str = typer.Argument(..., metavar="TYPE"),
                  content: str = typer.Argument(None, help="Its content, when NAME TYPE holds several.")):
    """Remove a record from a domain and PowerDNS."""
    state = state_of(ctx)
    state.client.delete(record_path(state.client, domain, name, rtype, content))
    state.output.result({"removed": [name, rtype.upper()] + ([content] if content else [])},
                        lambda data: state.output.note("{} {} removed.".format(name, rtype.upper())))


def _drift_lines(report):
    def side(values):
        return "-" if values is None else "{} (ttl {})".format(", ".join(values["contents"]), values["ttl"])

    lines = [] if report["zone_in_powerdns"] else ["{}: PowerDNS has no such zone".format(report["domain"])]
    for key, sign, what in (("missing_from_powerdns", "-", "not in PowerDNS"),
                            ("missing_from_inventory", "+", "not in the inventory"),
                            ("differing", "~", "differs")):
        for entry in report[key]:
            lines.append("{} {} {} {}: inventory {}, PowerDNS {}".format(
                sign, entry["name"], entry["type"], what, side(entry["inventory"]), side(entry["powerdns"])))
    return lines


@dns_app.command("check")
def check(ctx: typer.Context, domain: str = typer.Argument(None, help="One domain (default: all of yours).")):
    """Compare the inventory with PowerDNS: records missing on either side, or differing.
    Exit 1 when there is drift."""
    state = state_of(ctx)
    if domain:
        paths = [domain_path(state.client, domain)]
    else:
        paths = ["/v1/domains/{}".format(item["id"]) for item in _all(state.client, "/v1/domains")]
    reports = [state.client.get(path + "/check") for path in paths]
    drifted = [report["domain"] for report in reports if not report["in_sync"]]

    def render(_data):
        if not reports:
            state.output.note("No domains.")
        for report in reports:
            if report["in_sync"]:
                state.output.note("{}: in step with PowerDNS.".format(report["domain"]))
            else:
                state.output.note("{}: drift.".format(report["domain"]))
                for line in _drift_lines(report):
                    state.output.note("  " + line)

    document = {"in_sync": not drifted, "domains": reports}
    if not drifted or not state.output.json:  # with --json, the error's document holds the reports
        state.output.result(document, render)
    if drifted:
        raise CliError("{} domain(s) drifted from PowerDNS: {}".format(len(drifted), ", ".join(drifted)), EXIT_FAILED,
                       data=document)
