"""Job progress to each tenant's chat webhook, from a thread of ``corpus-api``.

The notifier listens to the master's event bus for the jobs' events
(``corpus/job/...``, whatever process runs the job: the API, a runner), keeps those
the controller signed (``controller.events``), reads the job from the inventory, and
when the job's tenant has a webhook queues the text of the event (``messages``). A
poster thread sends the queue in order, each message tried at most ``ATTEMPTS``
times: a job never waits for a chat, and a chat that is down loses its messages,
not the jobs. A job's tenant is the one it was started in, else its target's (an
environment's or a compute node's), else ``default``.

The webhook's URL is its credential: no log line names more than its scheme and host.
"""

import logging
import os
import queue

import httpx
from sqlalchemy import select

from mc_project.chat import messages, settings
from mc_project.common.service_thread import ServiceThread
from mc_project.controller import events
from mc_project.controller.master_bus import BusListener
from mc_project.errors import CorpusError
from mc_project.health.handlers import masked_target
from mc_project.inventory import db, secrets_crypto
from mc_project.inventory.models import DEFAULT_TENANT, ComputeNode, Environment, Job, Tenant

log = logging.getLogger(__name__)

PREFIX = "corpus/job/"
ATTEMPTS = 3
BACKOFF = 1.0  # seconds before the second attempt; doubled before each next one
TIMEOUT = 10
QUEUE_SIZE = 1000

class Poster(ServiceThread):
    """A thread POSTing ``{"text": ...}`` to webhooks, in the order they were queued."""

    thread_name = "corpus-chat-post"

    def __init__(self, attempts=ATTEMPTS, backoff=BACKOFF, timeout=TIMEOUT):
        super().__init__()
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self._queue = queue.Queue(QUEUE_SIZE)

    def submit(self, url, text):
        try:
            self._queue.put_nowait((url, text))
        except queue.Full:
            log.warning("chat: %s messages are waiting; one to %s was dropped", QUEUE_SIZE,
                        masked_target("webhook", url))

    def post(self, url, text):
        """Send one message; whether the webhook took it (after at most ``attempts`` tries)."""
        shown = masked_target("webhook", url)
        wait = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                answer = httpx.post(url, json={"text": text}, timeout=self.timeout)
                if answer.status_code < 300:
                    return True
                reason = "it answered {}".format(answer.status_code)
                final = 400 <= answer.status_code < 500 and answer.status_code != 429
            except httpx.HTTPError as exc:
                # The exception's text may hold the URL: only its type is said.
                reason, final = type(exc).__name__, False
            if final or attempt == self.attempts or self._stop.wait(wait):
                log.warning("chat: the webhook %s did not take a message after %d attempt(s): %s",
                            shown, attempt, reason)
                return False
            wait *= 2
        return False

    def run(self):
        while not self._stop.is_set():
            try:
                url, text = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.post(url, text)
            except Exception:  # pylint: disable=broad-except
                log.exception("chat: posting a message failed")


def job_tenant(sess, job):
    """The tenant id a job's messages go to."""
    if job.tenant_id is not None:
        return job.tenant_id
    for model in (Environment, ComputeNode):
        found = sess.scalar(select(model.tenant_id).where(model.name == job.target))
        if found is not None:
            return found
    return sess.scalar(select(Tenant.id).where(Tenant.name == DEFAULT_TENANT))


def _seconds(start, end):
    return (end - start).total_seconds() if start is not None and end is not None else None


def job_facts(sess, job, step_index=None):
    """What ``messages.text`` needs of ``job``."""
    steps = list(job.steps)
    step = next((row for row in steps if row.index == step_index), None)
    return {"id": job.id, "kind": job.kind, "target": job.target, "steps": len(steps), "error": job.error,
            "seconds": _seconds(job.started, job.ended),
            "step_seconds": _seconds(step.started, step.ended) if step is not None else None}


class Notifier(BusListener):
    """``start()`` the threads, ``stop()`` them; ``handle(tag, data)`` is what is done with
    one job event (tests call it directly)."""

    thread_name = "corpus-chat"
    prefixes = (PREFIX,)

    def __init__(self, opts, url, secrets_key, poster=None):
        super().__init__(opts)
        self.url = url
        self.secrets_key = secrets_key
        self.poster = poster or Poster()
        self._events_key = None

    def message(self, tag, data):
        """``(webhook URL, text)`` of a genuine job event its tenant's chat is told of, or None."""
        event = messages.event_of(tag, data)
        if event is None:
            return None
        if self._events_key is None:
            self._events_key = events.key(self.opts)
        if not events.verify(self._events_key, tag, data):
            log.warning("chat: dropped event %s, which the controller did not sign", tag)
            return None
        with db.session(self.url) as sess:
            job = sess.get(Job, event["job"])
            if job is None:
                return None
            tenant_id = job_tenant(sess, job)
            if tenant_id is None or not settings.has_webhook(sess, tenant_id):
                return None
            text = messages.text(event, job_facts(sess, job, event["step"]))
            webhook = settings.webhook_of(sess, secrets_crypto.load(self.secrets_key), tenant_id)
        return (webhook, text) if webhook and text else None

    def handle(self, tag, data):
        try:
            found = self.message(tag, data)
        except CorpusError as exc:
            log.warning("chat: no message for %s: %s", tag, exc)
            return None
        if found is not None:
            self.poster.submit(*found)
        return found

    def start(self):
        self.poster.start()
        return super().start()

    def stop(self, timeout=5):
        super().stop(timeout)
        self.poster.stop(timeout)


def start(ctl):
    """The started notifier of controller ``ctl``, or None without an event bus."""
    opts = getattr(ctl, "opts", None) or {}
    if not (opts.get("sock_dir") and os.path.isdir(opts["sock_dir"]) and getattr(ctl, "settings", None)):
        return None
    return Notifier(opts, ctl.url, ctl.settings["secrets_key"]).start()


def stop(notifier):
    if notifier is not None:
        notifier.stop()
