"""The controller's side of the detectors: ask hosts' minions to run them, and write
what they found to the inventory.

Three ways a host's detected groups reach the inventory, all through ``record``:

* ``run(ctl, ...)``: ``corpus detectors run`` (and the API) publish
  ``mc_health_detect.run`` to the hosts' minions at once, with the controller's rules;
* the minion's schedule (from its pillar) fires ``corpus/health/detected/<minion>``,
  signed with its key (``detect_events``): believed only when the minion named signed it;
* a highstate's return on the master's bus makes the controller run them on that minion.

``EventWriter`` handles the last two from the master's event bus, in the API process.
"""

import concurrent.futures
import logging

from mc_project.controller.master_bus import BusListener
from mc_project.errors import CorpusError
from mc_project.health import detect_events, detectors
from mc_project.inventory import db, detected_groups, host_rows
from mc_project.inventory.fleet_models import Host

log = logging.getLogger(__name__)

MODULE_RUN = "mc_health_detect.run"
HIGHSTATES = ("state.highstate", "state.apply")
RUN_TIMEOUT = 20


def rules_of(ctl):
    """The controller's detectors (``detectors.settings`` of its master options)."""
    return detectors.settings(ctl.opts)["rules"]


def target_hosts(sess, tenant_ids, names=None):
    """The hosts with a minion, of ``tenant_ids`` (only those named ``names``, if given)."""
    where = [host_rows.TENANT_ID.in_(list(tenant_ids))]
    if names:
        where.append(Host.name.in_(list(names)))
    hosts = [host for host in host_rows.rows(sess, *where) if host["minion_id"]]
    if names:
        missing = sorted(set(names) - {host["name"] for host in hosts})
        if missing:
            raise CorpusError("No host named {} with a minion.".format(missing[0]))
    return hosts


def run(ctl, tenant_ids, names=None, timeout=RUN_TIMEOUT):
    """Run the detectors on the hosts (all of ``tenant_ids``', or those named) and write
    their groups; one record per host: its groups, what changed, each rule's result."""
    rules = [rule.record() for rule in rules_of(ctl)]
    if not rules:
        raise CorpusError("No detectors are configured (master option corpus_detectors).")
    with db.session(ctl.url) as sess:
        hosts = target_hosts(sess, tenant_ids, names)
    if not hosts:
        return []
    by_minion = {host["minion_id"]: host for host in hosts}
    answers = ctl.answers(sorted(by_minion), MODULE_RUN, timeout=timeout, rules=rules)
    results = []
    with db.session(ctl.url) as sess:
        for minion, host in sorted(by_minion.items(), key=lambda item: item[1]["name"]):
            answer = answers.get(minion)
            data = answer.get("ret") if isinstance(answer, dict) else None
            if answer is None:
                results.append({"host": host["name"], "minion_id": minion, "status": "no answer",
                                "error": "Minion {} did not answer within {} s.".format(minion, timeout)})
                continue
            if not isinstance(data, dict) or answer.get("retcode", 0) not in (0, None):
                results.append({"host": host["name"], "minion_id": minion, "status": "failed",
                                "error": str(data).splitlines()[0] if data else "no result"})
                continue
            written = detected_groups.record(sess, host, data.get("groups") or [])
            results.append({"host": host["name"], "minion_id": minion, "status": "done",
                            "groups": written["groups"], "added": written["added"], "removed": written["removed"],
                            "detectors": data.get("detectors") or {}, "notes": data.get("notes") or []})
    return results


def write_event(url, minion_id, groups):
    """Write the groups a minion's scheduled run reported; the record, or None."""
    if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
        log.warning("detectors: ignoring a malformed result from %s", minion_id)
        return None
    with db.session(url) as sess:
        return detected_groups.record_for_minion(sess, minion_id, groups)


def _event_body(data):
    """A minion's ``event.send`` arrives as ``{"id", "data": {...}, ...}``."""
    return data.get("data") if isinstance(data.get("data"), dict) else data


def is_highstate(tag, data):
    if not tag.startswith("salt/job/") or "/ret/" not in tag or not isinstance(data, dict):
        return False
    fun = data.get("fun")
    if fun == "state.highstate":
        return True
    # state.apply with no state named is a highstate.
    return fun == "state.apply" and not [arg for arg in data.get("fun_args") or [] if not isinstance(arg, dict)]


class EventWriter(BusListener):
    """Listens to the master's bus in a thread: scheduled results are written, and a
    highstate's return runs the detectors on that minion (in a worker, so the bus is
    read on while a run waits for its answer)."""

    thread_name = "corpus-detectors-events"
    prefixes = (detect_events.PREFIX, "salt/job/")

    def __init__(self, ctl):
        super().__init__(ctl.opts)
        self.ctl = ctl
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="corpus-detect")

    def stop(self, timeout=10):
        super().stop(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def handle(self, tag, data):
        minion_id = detect_events.minion_of(tag)
        if minion_id and isinstance(data, dict):
            self._pool.submit(self._write, minion_id, tag, _event_body(data))
        elif is_highstate(tag, data) and data.get("id"):
            self._pool.submit(self._run_after_highstate, data["id"])

    def _write(self, minion_id, tag, body):
        try:
            if not detect_events.verify(self.ctl.accepted_key(minion_id), tag, body):
                log.warning("detectors: dropped a result for %s that its key did not sign (or too old)", minion_id)
                return
            write_event(self.ctl.url, minion_id, body.get("groups"))
        except Exception:  # pylint: disable=broad-except
            log.exception("detectors: cannot write the groups of %s", minion_id)

    def _run_after_highstate(self, minion_id):
        try:
            with db.session(self.ctl.url) as sess:
                host = host_rows.by_minion(sess, minion_id)
            if host is None or not rules_of(self.ctl):
                return
            # The controller gives this worker thread a Salt client of its own.
            run(self.ctl, [host["tenant_id"]], [host["name"]])
        except Exception:  # pylint: disable=broad-except
            log.exception("detectors: cannot run on %s after its highstate", minion_id)

    def wanted(self, event):
        # Decided in the bus's reader: the returns of every other job are not queued here.
        return detect_events.minion_of(event["tag"]) is not None or is_highstate(event["tag"], event["data"])

