"""The daemon threads the API process keeps beside its requests (health, chat, detectors,
site walks, the reaper of old containers): started once, stopped at shutdown."""

import threading


class ServiceThread:
    """``start()`` runs ``run()`` in a daemon thread named ``thread_name``; ``stop()`` sets
    ``self._stop``, which ``run`` watches, and waits for the thread to end."""

    thread_name = "corpus-service"

    def __init__(self):
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=10):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self):
        raise NotImplementedError
