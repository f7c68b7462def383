"""The API process destroys, on its own, the old containers of redeploys once they have been
kept ``corpus:redeploy_keep_hours`` (``operations.destroy_retired``, every ten minutes), so
nobody has to schedule ``salt-run mc_cloud.destroy_retired``."""

import logging

from mc_project.common.service_thread import ServiceThread
from mc_project.controller import operations

log = logging.getLogger(__name__)

INTERVAL = 600.0


class Reaper(ServiceThread):
    thread_name = "corpus-retired-reaper"

    def __init__(self, ctl, interval=INTERVAL):
        super().__init__()
        self.ctl = ctl
        self.interval = interval

    def run(self):
        while not self._stop.wait(self.interval):
            try:
                destroyed = operations.destroy_retired(self.ctl)
            except Exception as exc:  # pylint: disable=broad-except  (the next round tries again)
                log.warning("old containers of redeploys not destroyed: %s", exc)
                continue
            if destroyed:
                log.info("old containers of redeploys destroyed: %s", ", ".join(destroyed))
