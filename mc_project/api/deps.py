"""What the routers share: the controller, pagination, the list answer's shape."""

import threading

from fastapi import Query, Request
from pydantic import BaseModel, ConfigDict

from mc_project.api import background

MAX_LIMIT = 500
DEFAULT_LIMIT = 50

_local = threading.local()


class Page:
    """``?limit=`` (default 50, at most 500) and ``?offset=``."""

    def __init__(self, limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
                 offset: int = Query(0, ge=0, le=2 ** 31)):
        self.limit = limit
        self.offset = offset

    def answer(self, items, total):
        return {"items": items, "total": total, "limit": self.limit, "offset": self.offset}


class Strict(BaseModel):
    """A request body: unknown keys are refused (422)."""

    model_config = ConfigDict(extra="forbid")


def controller(request: Request):
    """The controller for this request's thread (each thread its own Salt client)."""
    base = request.app.state.ctl
    cached = getattr(_local, "ctl", None)
    if cached is None or cached[0] is not base:
        cached = (base, background.worker_controller(base))
        _local.ctl = cached
    return cached[1]
