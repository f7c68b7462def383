"""The health work the API process does on its own: writing the detectors' scheduled
results (and running them after a highstate), scheduled site walks, and the checks'
states (``listener``: results, TTL deadlines, handlers). Detectors and walks start
only when their master option is set; a bad option is logged, and the API still
serves. The checks' listener starts whenever the master's event bus is there."""

import logging
import os

from mc_project.errors import CorpusError
from mc_project.health import detector_runs, detectors, listener, walk_runs

log = logging.getLogger(__name__)


def start(ctl):
    """The started background workers (a list to hand to ``stop``)."""
    started = []
    opts = getattr(ctl, "opts", None) or {}
    try:
        if opts.get(detectors.OPTION) and detectors.settings(opts)["rules"]:
            started.append(detector_runs.EventWriter(ctl).start())
    except CorpusError as exc:
        log.error("detectors are off: %s", exc)
    try:
        if opts.get(walk_runs.OPTION):
            started.append(walk_runs.Scheduler(ctl, walk_runs.schedule_settings(opts)).start())
    except CorpusError as exc:
        log.error("scheduled site walks are off: %s", exc)
    if opts.get("sock_dir") and os.path.isdir(opts["sock_dir"]) and getattr(ctl, "settings", None):
        started.append(listener.for_controller(ctl).start())
    return started


def stop(started):
    for worker in started:
        worker.stop()
