"""One reader of the master's event bus for all the job streams of an API process.

Each stream of a job's events (``sse.stream``) used to hold a subscription of its own, and
every subscriber receives and decodes every event of the master (each minion's job returns
included): with 8 jobs watched at once, the API decoded each event 8 times. The reader here
decodes each once, in one thread, keeps the controller's signed job events
(``corpus/job/<id>/...``) and hands each to the streams of its job.
"""

import logging
import os
import queue
import threading
import time

import salt.utils.event

from mc_project.controller import events

log = logging.getLogger(__name__)

JOB_TAGS = "corpus/job/"
RECONNECT = 1.0  # seconds between two tries to reach the bus again


class JobBus:
    def __init__(self, opts):
        self.opts = opts
        self._lock = threading.Lock()
        self._queues = {}  # job prefix -> the queues of the streams watching that job
        self._thread = None
        self._connected = threading.Event()

    def subscribe(self, job_id):
        """A queue that gets the job's events from now on, or None when the master's bus
        cannot be reached (the stream then reads the inventory only)."""
        if not self._start():
            return None
        events_of_job = queue.Queue()
        with self._lock:
            self._queues.setdefault(events.job_prefix(job_id), []).append(events_of_job)
        return events_of_job

    def unsubscribe(self, job_id, events_of_job):
        with self._lock:
            prefix = events.job_prefix(job_id)
            kept = [q for q in self._queues.get(prefix, ()) if q is not events_of_job]
            if kept:
                self._queues[prefix] = kept
            else:
                self._queues.pop(prefix, None)

    def _start(self):
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                if not os.path.isdir(self.opts["sock_dir"]):
                    return False
                self._connected.clear()
                self._thread = threading.Thread(target=self._read, name="corpus-job-bus", daemon=True)
                self._thread.start()
        # Subscribed before the caller reads the job: what it fires after is not missed.
        return self._connected.wait(timeout=3)

    def _read(self):
        secret = events.key(self.opts)
        while True:
            bus = salt.utils.event.get_master_event(self.opts, self.opts["sock_dir"], listen=True)
            try:
                if not bus.connect_pub(timeout=2):
                    log.warning("job events: the master's event bus cannot be reached; reading the inventory only")
                    self._connected.clear()
                    time.sleep(RECONNECT)
                    continue
                self._connected.set()
                while True:
                    event = bus.get_event(wait=RECONNECT, tag=JOB_TAGS, full=True)
                    if event and events.verify(secret, event["tag"], event["data"]):
                        self._hand_over(event)
            except Exception:  # pylint: disable=broad-except
                log.warning("job events: the master's event bus was lost; connecting again", exc_info=True)
                self._connected.clear()
                time.sleep(RECONNECT)
            finally:
                bus.destroy()

    def _hand_over(self, event):
        tag = event["tag"]
        prefix = tag[:tag.find("/", len(JOB_TAGS)) + 1]
        with self._lock:
            watchers = list(self._queues.get(prefix, ()))
        for events_of_job in watchers:
            events_of_job.put(event)


_BUSES = {}
_BUSES_LOCK = threading.Lock()


def for_master(opts):
    """The process's reader of the bus of the master whose options are ``opts``."""
    with _BUSES_LOCK:
        key = (os.getpid(), opts["sock_dir"])
        if key not in _BUSES:
            _BUSES[key] = JobBus(opts)
        return _BUSES[key]
