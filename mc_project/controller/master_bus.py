"""One reader of the master's event bus per process, for everything in it that waits on events.

Every subscriber of Salt's event bus receives and decodes every event of the master (each
minion's job returns, start events, the controller's job events), and Salt's ``LocalClient``
waits for a return by polling its subscription a hundred times a second. With eight
environments made at once, the controller's calls then spent more CPU waiting than working.
Here one thread decodes each event once and hands it to the subscriptions whose tag prefixes
it matches; a call waiting for its return sleeps on a queue until the return comes.
"""

import logging
import os
import queue
import threading
import time

import salt.utils.event

from mc_project.common.service_thread import ServiceThread

log = logging.getLogger(__name__)

RECONNECT = 1.0  # seconds between two tries to reach the bus again
CONNECT_WAIT = 3  # seconds a first subscription waits for the reader to be connected


class Subscription:
    """The events whose tag starts with one of ``prefixes`` (all events when there is none)
    and that ``check`` accepts, from the moment it was made; a ``with`` block ends it."""

    def __init__(self, bus, prefixes, check=None):
        self._bus = bus
        self.prefixes = tuple(prefixes)
        self.check = check
        self._queue = queue.Queue()

    def add(self, prefix):
        """Also receive the events whose tag starts with ``prefix``, from now on."""
        with self._bus.lock:
            self.prefixes += (prefix,)

    def wants(self, event):
        tag = event["tag"]
        return ((not self.prefixes or tag.startswith(self.prefixes))
                and (self.check is None or self.check(event)))

    def put(self, event):
        self._queue.put(event)

    def get_event(self, wait=5, tag="", full=False):
        """The next event whose tag starts with ``tag`` within ``wait`` seconds, or None; as
        Salt's ``SaltEvent.get_event`` gives it (``{"tag", "data"}`` with ``full``, else the data)."""
        deadline = time.monotonic() + wait
        while True:
            try:
                event = self._queue.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                return None
            if event["tag"].startswith(tag):
                return event if full else event["data"]

    def close(self):
        self._bus.unsubscribe(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class MasterBus:
    def __init__(self, opts):
        self.opts = opts
        self.lock = threading.Lock()
        self._subscriptions = []
        self._thread = None
        self._connected = threading.Event()

    def subscribe(self, *prefixes, check=None):
        """A ``Subscription`` to the events whose tag starts with one of ``prefixes``, or None
        when the master's bus cannot be reached."""
        if not self._start():
            return None
        subscription = Subscription(self, prefixes, check)
        with self.lock:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription):
        with self.lock:
            self._subscriptions = [kept for kept in self._subscriptions if kept is not subscription]

    def _start(self):
        with self.lock:
            if self._thread is None or not self._thread.is_alive():
                if not os.path.isdir(self.opts["sock_dir"]):
                    return False
                self._connected.clear()
                self._thread = threading.Thread(target=self._read, name="corpus-master-bus", daemon=True)
                self._thread.start()
        # Subscribed once the reader is: what is fired after the caller goes on is not missed.
        return self._connected.wait(timeout=CONNECT_WAIT)

    def _read(self):
        while True:
            bus = salt.utils.event.get_master_event(self.opts, self.opts["sock_dir"], listen=True)
            try:
                if not bus.connect_pub(timeout=2):
                    log.warning("the master's event bus cannot be reached; trying again")
                    self._connected.clear()
                    time.sleep(RECONNECT)
                    continue
                self._connected.set()
                while True:
                    event = bus.get_event(wait=RECONNECT, full=True)
                    if event:
                        self.hand_over(event)
            except Exception:  # pylint: disable=broad-except
                log.warning("the master's event bus was lost; connecting again", exc_info=True)
                self._connected.clear()
                time.sleep(RECONNECT)
            finally:
                bus.destroy()

    def hand_over(self, event):
        with self.lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            if subscription.wants(event):
                subscription.put(event)


def subscription_until(opts, stop, *prefixes, check=None, retry=5):
    """A subscription as ``MasterBus.subscribe`` makes it, for a thread that serves until
    ``stop`` is set: while the bus cannot be reached, it tries again every ``retry`` seconds.
    None once ``stop`` is set."""
    while not stop.is_set():
        subscription = for_master(opts).subscribe(*prefixes, check=check)
        if subscription is not None:
            return subscription
        log.warning("the master's event bus cannot be reached; trying again in %d s", retry)
        stop.wait(retry)
    return None


class BusListener(ServiceThread):
    """A service thread that hands ``handle(tag, data)`` each event of the master's bus whose
    tag starts with one of ``prefixes`` and that ``wanted`` accepts; ``ready`` is set once
    it listens."""

    prefixes = ()

    def __init__(self, opts):
        super().__init__()
        self.opts = opts
        self.ready = threading.Event()

    def wanted(self, event):
        return True

    def handle(self, tag, data):
        raise NotImplementedError

    def run(self):
        bus = subscription_until(self.opts, self._stop, *self.prefixes, check=self.wanted)
        if bus is None:
            return
        with bus:
            self.ready.set()
            while not self._stop.is_set():
                event = bus.get_event(wait=0.5, full=True)
                if event:
                    try:
                        self.handle(event["tag"], event["data"])
                    except Exception:  # pylint: disable=broad-except
                        log.exception("%s: an event could not be handled", self.thread_name)


_BUSES = {}
_BUSES_LOCK = threading.Lock()


def for_master(opts):
    """The process's reader of the bus of the master whose options are ``opts``."""
    with _BUSES_LOCK:
        key = (os.getpid(), opts["sock_dir"])
        if key not in _BUSES:
            _BUSES[key] = MasterBus(opts)
        return _BUSES[key]
