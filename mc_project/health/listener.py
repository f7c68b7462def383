"""The controller's health service: a thread of ``corpus-api`` that listens to the
master's event bus for the checks' results (``corpus/check/<minion>/<check>``), keeps
their states in the inventory, and every ``tick`` seconds moves TTL checks past their
deadline to CRITICAL and repeats what handlers with a repeat must hear again.

A result is believed only when the minion its tag names signed it (``reports``) and
is a host of the inventory that has that check; anything else is dropped with a
warning in the API's log.

The results that reach the bus within ``BATCH_WINDOW`` of each other are recorded in
one transaction (up to ``MAX_BATCH``), their hosts, checks and states read in a few
queries (``results.Lookup``): a fleet of 200 hosts running 10 checks every 30 s sends
~67 results a second, and a transaction and its lookups for each would be most of the
listener's time (``bench/health.py`` measures both).
"""

import logging
import time

from mc_project.controller import master_bus
from mc_project.errors import CorpusError
from mc_project.health import handlers, reports, results
from mc_project.inventory import db

log = logging.getLogger(__name__)

TICK = 1.0
# A minion's accepted key is read again after this long (a key may be deleted, or a
# minion accepted anew).
KEY_CACHE_SECONDS = 60
# Results recorded in one transaction at most (the rest wait for the next one), and how
# long the first of them waits for others: a result is a state 0.1 s later at most, and
# a busy fleet's results cost a commit each tenth of a second, not one each.
MAX_BATCH = 500
BATCH_WINDOW = 0.1


class Listener(master_bus.BusListener):
    """``start()`` the thread, ``stop()`` it; ``handle(tag, data)`` and ``tick()`` are
    what it does (tests call them directly)."""

    thread_name = "corpus-health"
    prefixes = (reports.PREFIX,)

    def __init__(self, opts, url, smtp, accepted_key, tick=TICK):
        super().__init__(opts)
        self.url = url
        self.smtp = smtp
        self.accepted_key = accepted_key  # minion id -> its accepted public key (PEM) or None
        self.tick_seconds = tick
        self._keys = {}

    def _key(self, minion_id):
        cached = self._keys.get(minion_id)
        if cached is None or time.monotonic() - cached[1] > KEY_CACHE_SECONDS:
            cached = (self.accepted_key(minion_id), time.monotonic())
            # A minion not accepted yet is asked about again at its next result.
            if cached[0] is not None:
                self._keys[minion_id] = cached
        return cached[0]

    def handle(self, tag, data):
        """One event: a check's result recorded (and its notifications sent), or dropped (None)."""
        return self.handle_batch([(tag, data)])

    def _verified(self, tag, data):
        """``(minion id, check name, result)`` of a check's event its minion signed, or None."""
        parsed = reports.parse_tag(tag)
        if parsed is None:
            return None
        minion_id, check_name = parsed
        body = reports.body_of(data)
        if not reports.verify(self._key(minion_id), tag, body):
            log.warning("health: dropped a result of check %s that minion %s did not sign", check_name, minion_id)
            return None
        return minion_id, check_name, body

    def handle_batch(self, events):
        """Events ``(tag, data)``: their results recorded in one transaction, then the
        notifications they call for sent; the statuses sent (None when none was recorded)."""
        found = [verified for verified in (self._verified(tag, data) for tag, data in events) if verified]
        if not found:
            return None
        try:
            deliveries, recorded = self._record(found)
        except Exception:  # pylint: disable=broad-except
            if len(found) == 1:
                raise
            # One result the transaction could not take must not cost the others theirs.
            log.exception("health: a batch of %d results failed; recording them one by one", len(found))
            deliveries, recorded = [], 0
            for one in found:
                try:
                    more, count = self._record([one])
                except Exception:  # pylint: disable=broad-except
                    log.exception("health: dropped the result of check %s of minion %s", one[1], one[0])
                    continue
                deliveries += more
                recorded += count
        return handlers.dispatch(self.url, deliveries, self.smtp) if recorded else None

    def _record(self, found):
        deliveries, recorded = [], 0
        with db.session(self.url) as sess:
            lookup = results.Lookup(sess)
            lookup.prefetch(minion_id for minion_id, _check, _body in found)
            for minion_id, check_name, body in found:
                # Refused before anything is written: the others of the batch stay.
                try:
                    deliveries += results.record_result(sess, minion_id, check_name, body, lookup=lookup)
                except CorpusError as exc:
                    log.warning("health: dropped a result: %s", exc)
                    continue
                recorded += 1
        return deliveries, recorded

    def tick(self):
        """TTL deadlines and repeats."""
        with db.session(self.url) as sess:
            deliveries = results.expire_ttls(sess)
            deliveries += results.repeats(sess)
        return handlers.dispatch(self.url, deliveries, self.smtp)

    def run(self):
        bus = master_bus.subscription_until(self.opts, self._stop, *self.prefixes)
        if bus is None:
            return
        next_tick = time.monotonic()
        with bus:
            self.ready.set()
            while not self._stop.is_set():
                wait = max(min(next_tick - time.monotonic(), self.tick_seconds), 0.01)
                event = bus.get_event(wait=wait, full=True)
                if event:
                    self._safely(self.handle_batch, self._drain(bus, event))
                if time.monotonic() >= next_tick:
                    self._safely(self.tick)
                    next_tick = time.monotonic() + self.tick_seconds

    @staticmethod
    def _drain(bus, first):
        """``first`` and the results that reach ``bus`` within ``BATCH_WINDOW`` seconds
        (``MAX_BATCH`` at most)."""
        events = [(first.get("tag", ""), first.get("data"))]
        deadline = time.monotonic() + BATCH_WINDOW
        while len(events) < MAX_BATCH:
            left = deadline - time.monotonic()
            more = bus.get_event(wait=max(left, 0), full=True)
            if not more:
                break
            events.append((more.get("tag", ""), more.get("data")))
        return events

    @staticmethod
    def _safely(function, *args):
        try:
            function(*args)
        except Exception:  # pylint: disable=broad-except
            log.exception("health: %s failed", getattr(function, "__name__", function))


def for_controller(ctl, tick=TICK):
    """The listener of controller ``ctl`` (its master options, inventory and mail relay)."""
    return Listener(ctl.opts, ctl.url, ctl.settings["smtp"], ctl.accepted_key, tick=tick)
