"""Controller jobs as the fault tests cut them off: a job's process killed mid-way."""

import os
import signal
import time

from sqlalchemy import select

from mc_project.inventory import db
from mc_project.inventory.models import Job, JobStep


def kill_when_running(url, target, step_index, proc, timeout=600):
    """SIGKILL ``proc``'s process group once the newest job on ``target`` (in the inventory at
    ``url``) runs step ``step_index`` or a later one (a fast step can start and end between
    two looks); returns (job id, index of the step it was killed in)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session(url) as sess:
            job = sess.scalar(select(Job).where(Job.target == target).order_by(Job.id.desc()))
            # The first one: steps of a group run at the same time.
            running = job is not None and sess.scalar(select(JobStep).where(
                JobStep.job_id == job.id, JobStep.index >= step_index, JobStep.status == "running")
                .order_by(JobStep.index))
            if running:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return job.id, running.index
        assert proc.poll() is None, "the job ended before step {}".format(step_index)
        time.sleep(0.05)
    raise AssertionError("job {} never reached step {}".format(target, step_index))
