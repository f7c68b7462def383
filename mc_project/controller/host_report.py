"""The per-host report of a run on the inventory (a Salt state run, a playbook), as AWX
keeps one: typed, ordered events -- one per state or task on a host, ``ok``,
``changed``, ``failed``, ``unreachable`` or ``skipped`` -- and a summary per host.

Each event is fired at once on the master's bus as ``corpus/job/<id>/host/<seq>/<status>``
(signed like every job event), which the API's event stream and the CLI show as it
happens, and kept on the job's clipboard (``host_events``; ``summary`` at the end), which
the stream reads again for any event the bus lost, and the job's record shows.
"""

import logging

from mc_project import jobs
from mc_project.common import messages

log = logging.getLogger(__name__)

STATUSES = ("ok", "changed", "failed", "unreachable", "skipped")
# What a host's summary says, worst first.
WORST_FIRST = ("unreachable", "failed", "changed", "ok", "skipped")
MESSAGE_CHARS = 300
# A highstate of hundreds of states on many hosts: the clipboard keeps this many events
# (the summary counts them all).
KEPT_EVENTS = 5000


def host_tag(job_id, seq, status):
    return "corpus/job/{}/host/{}/{}".format(job_id, seq, status)


def short(text):
    """One line of at most ``MESSAGE_CHARS`` characters, or None."""
    line = " ".join(str(text).split()) if text is not None else ""
    if not line:
        return None
    return line if len(line) <= MESSAGE_CHARS else line[:MESSAGE_CHARS - 3] + "..."


def host_status(counts):
    """A host's one word: unreachable or failed when anything was, changed, ok, or skipped
    when nothing ran on it."""
    for status in WORST_FIRST[:3]:
        if counts.get(status):
            return status
    return "ok" if counts.get("ok") or counts.get("answered") else "skipped"


class HostReport:
    """The events and summary of one run, on the step's clipboard."""

    def __init__(self, ctl, ctx, hosts):
        self.ctl = ctl
        self.ctx = ctx
        self.events = ctx.clipboard.setdefault("host_events", [])
        self.seq = len(self.events)
        self.counts = {name: dict.fromkeys(STATUSES, 0) for name in hosts}

    def event(self, host, status, task=None, message=None):
        """Record and announce one event of ``host``."""
        if status not in STATUSES:
            raise ValueError("unknown host status {!r}".format(status))
        self.seq += 1
        data = {"job": self.ctx.job_id, "seq": self.seq, "host": host, "status": status,
                "task": short(task), "message": short(message)}
        self.counts.setdefault(host, dict.fromkeys(STATUSES, 0))[status] += 1
        if len(self.events) < KEPT_EVENTS:
            self.events.append(data)
        self.ctx.log("{} {}{}{}".format(host, status, ": " + data["task"] if data["task"] else "",
                                        " -- " + data["message"] if data["message"] and status != "ok" else ""))
        try:
            self.ctl.fire(host_tag(self.ctx.job_id, self.seq, status), data)
        except Exception:  # a lost event must not break the run: the clipboard keeps it
            log.warning("Could not fire host event %s of job %s", self.seq, self.ctx.job_id, exc_info=True)

    def answered(self, host):
        """``host`` ran the work and has nothing to report (no state, no task): it is ok."""
        self.counts.setdefault(host, dict.fromkeys(STATUSES, 0))["answered"] = 1

    def summary(self):
        """``{host: {ok, changed, failed, unreachable, skipped, status}}``."""
        found = {}
        for host, counts in self.counts.items():
            found[host] = {status: counts[status] for status in STATUSES}
            found[host]["status"] = host_status(counts)
        return found

    def finish(self, what):
        """Put the summary on the clipboard; raise ``jobs.FailedWithReport`` (the job fails, its
        report kept) when a host failed or was unreachable. ``what`` names the run."""
        summary = self.summary()
        self.ctx.clipboard["summary"] = summary
        self.ctx.clipboard["events_total"] = self.seq
        bad = [(host, row["status"]) for host, row in sorted(summary.items())
               if row["status"] in ("failed", "unreachable")]
        if bad:
            shown = ", ".join("{} ({})".format(host, status) for host, status in bad[:5])
            more = " and {} more".format(len(bad) - 5) if len(bad) > 5 else ""
            raise jobs.FailedWithReport("{} failed on {} of {} hosts: {}{}".format(
                what, len(bad), len(summary), shown, more))
        counts = {status: sum(1 for row in summary.values() if row["status"] == status) for status in WORST_FIRST}
        self.ctx.log("{} on {} hosts: {}".format(what, len(summary), messages.first_line(", ".join(
            "{} {}".format(count, status) for status, count in counts.items() if count))))
