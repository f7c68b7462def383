"""Blocking reads of the key/value store: wait until an index is no longer the one
a watcher knew, or until its wait is over.

A waiter holds no thread and no database connection while it waits: it sleeps on
an asyncio future that a write of this process wakes (``CHANGES.changed(tenant)``,
called from any thread once the write is committed), and at least every
``POLL_SECONDS`` it reads the tenant's counter again, so the writes of another
API process are seen within that time. Only when the counter moved does it read
the index of its key or prefix, which may not have moved.
"""

import asyncio
import re
import threading
import time

import anyio.to_thread

POLL_SECONDS = 0.5
# Consul's bounds: a wait of 5 minutes unless said, 10 at most.
DEFAULT_WAIT_SECONDS = 300.0
MAX_WAIT_SECONDS = 600.0
WAIT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


def parse_wait(text):
    """Seconds of a ``wait`` (``30s``, ``500ms``, ``5m``, ``10``), at most 10 minutes; None
    for a malformed one."""
    if text is None or text == "":
        return DEFAULT_WAIT_SECONDS
    match = WAIT_RE.match(text)
    if not match:
        return None
    return min(float(match.group(1)) * UNITS[match.group(2)], MAX_WAIT_SECONDS)


class Changes:
    """This process's signal of changes, per tenant: a generation number that each
    write bumps, and the futures of the waiters to wake."""

    def __init__(self):
        self._lock = threading.Lock()
        self._generations = {}
        self._waiters = {}

    def generation(self, tenant_id):
        with self._lock:
            return self._generations.get(tenant_id, 0)

    def changed(self, tenant_id):
        """A write to ``tenant_id``'s store was committed (any thread)."""
        with self._lock:
            self._generations[tenant_id] = self._generations.get(tenant_id, 0) + 1
            waiters = self._waiters.pop(tenant_id, [])
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_settle, future)
            except RuntimeError:  # that waiter's loop is closed: nobody to wake
                pass

    async def wait(self, tenant_id, since, timeout):
        """Return after a change of ``tenant_id`` later than generation ``since``, or after
        ``timeout`` seconds, whichever comes first."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            if self._generations.get(tenant_id, 0) != since:
                return
            self._waiters.setdefault(tenant_id, []).append((loop, future))
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                waiting = self._waiters.get(tenant_id, [])
                if (loop, future) in waiting:
                    waiting.remove((loop, future))


def _settle(future):
    if not future.done():
        future.set_result(None)


CHANGES = Changes()


async def wait_for_change(tenant_id, known_index, seconds, read_index, read_store_index, changes=CHANGES):
    """Wait until ``read_index()`` differs from ``known_index`` or ``seconds`` have passed.

    ``read_index`` and ``read_store_index`` are blocking functions (each opens and
    closes its own session) run in a worker thread for as long as they read.
    """
    deadline = time.monotonic() + seconds
    seen_store = None
    while True:
        generation = changes.generation(tenant_id)
        store = await anyio.to_thread.run_sync(read_store_index)
        if store != seen_store:
            seen_store = store
            if await anyio.to_thread.run_sync(read_index) != known_index:
                return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        await changes.wait(tenant_id, generation, min(POLL_SECONDS, remaining))
