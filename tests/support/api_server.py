"""The corpus API served for real (uvicorn on the loopback, in a thread), for the tests that
drive it with the ``corpus`` command or a browser."""

import contextlib
import threading

import uvicorn

from support.ports import free_port
from support.wait import wait_for

LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def served(app):
    """Serve ``app`` on a free loopback port for the block; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=30, what="the API to start")
        yield "http://{}:{}".format(LOOPBACK, port)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
