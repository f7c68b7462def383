"""The health work the API process does on its own: writing the detectors' scheduled
results (and running them after a highstate), and scheduled site walks. Each starts
only when its master option is set; a bad option is logged, and the API still serves."""

import logging

from mc_project.errors import CorpusError
from mc_project.health import detector_runs, detectors, walk_runs

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
    return started


def stop(started):
    for worker in started:
        worker.stop()
