"""``run:salt_state``: a state function (``state.apply`` and kin) on the minions of some
inventory hosts, each minion's states reported as host events as its answer comes in.

The minions are targeted by list, by the ids the inventory holds for the hosts; a host
without a minion, and a minion that did not answer, are ``unreachable``. The job fails
(its report kept) when a host failed or was unreachable. Nothing to undo: a state run
is taken back by another state run, not by the job.
"""

from mc_project.controller import host_report, salt_state_events

# Seconds before Salt asks the minions that have not answered whether they still run the
# states: those that do are waited for, however long their states take; the others are
# unreachable.
ANSWER_WAIT = 30


def salt_state(ctl, ctx):
    clip = ctx.clipboard
    hosts = clip["hosts"]
    report = host_report.HostReport(ctl, ctx, [host["name"] for host in hosts])
    by_minion = {}
    for host in hosts:
        if host.get("minion_id"):
            by_minion[host["minion_id"]] = host["name"]
        else:
            report.event(host["name"], "unreachable", message="it has no minion (salt-ssh reaches it through "
                                                              "the roster, not corpus run)")
    args = [",".join(clip["sls"])] if clip.get("sls") else []
    kwargs = {"test": True} if clip.get("test") else {}
    answered = set()
    if by_minion:
        answers = ctl.answers_as_they_come(sorted(by_minion), clip["function"], *args, timeout=ANSWER_WAIT,
                                           **kwargs)
        for minion, answer in answers:
            if minion not in by_minion or minion in answered:
                continue  # not one of ours (list targeting names only ours), or said twice
            if isinstance(answer, dict) and answer.get("failed") and "ret" not in answer:
                continue  # Salt's word for a minion that never answered: unreachable below
            answered.add(minion)
            ret = answer.get("ret") if isinstance(answer, dict) else answer
            report.answered(by_minion[minion])
            for status, task, message in salt_state_events.events(ret):
                report.event(by_minion[minion], status, task, message)
    for minion in sorted(set(by_minion) - answered):
        report.event(by_minion[minion], "unreachable",
                     message="minion {} did not answer (down, or not connected to the master)".format(minion))
    report.finish("{}{}".format(clip["function"], " (test=True)" if clip.get("test") else ""))


STEPS = {"run:salt_state": (salt_state, None)}
