"""``run:playbook``: a playbook run by ansible-runner on some inventory hosts, each task's
result on each host a host event as Ansible reports it.

The hosts are read again from the inventory when the step runs (their resolved
variables as they are now); a host without an address to reach over SSH is
``unreachable`` without being tried. The job fails (its report kept) when a host failed
or was unreachable, or when the playbook failed before any host ran (a syntax error).
"""

from mc_project.controller import host_report, playbook_events, playbooks
from mc_project.errors import CorpusError
from mc_project.inventory import ansible_export, db


def run_playbook(ctl, ctx):
    clip = ctx.clipboard
    names = [host["name"] for host in clip["hosts"]]
    report = host_report.HostReport(ctl, ctx, names)
    reachable = []
    for host in clip["hosts"]:
        if host.get("address"):
            reachable.append(host["name"])
        else:
            report.event(host["name"], "unreachable", message="it has no address to reach over SSH")
    if reachable:
        with db.session(ctl.url) as sess:
            export = ansible_export.ansible_inventory(sess, [clip["tenant_id"]])
        seen = set()

        def on_event(event):
            found = playbook_events.host_event(event)
            if found is not None and found[0] in report.counts:
                seen.add(found[0])
                report.event(*found)

        status, rc, error = playbooks.run(ctl, clip["playbook"], playbooks.inventory_for(export, reachable),
                                          clip.get("check", False), on_event, timeout=clip["timeout"])
        ctx.log("ansible-playbook ended {} (exit {})".format(status, rc))
        if status != "successful" and not seen:
            raise CorpusError("ansible-playbook {} before any host ran: {}".format(
                status, (error or "exit code {}".format(rc)).rstrip(".")))
        for name in reachable:
            if name not in seen:
                report.event(name, "skipped", message="no play of the playbook matched it")
    report.finish("the playbook{}".format(" (--check)" if clip.get("check") else ""))


STEPS = {"run:playbook": (run_playbook, None)}
