"""Handlers: who is told of a check's hard state change (or of a site walk's failure
and recovery, ``walk_alerts``), and telling them.

A handler is a mail address (sent through the controller's relay, ``corpus: smtp``)
or a webhook (a POST of ``{"text": ...}``, which Slack, Mattermost and the Matrix
bridges' incoming hooks accept). It covers the hosts of one group (and the groups
inside it), or the whole tenant. While a state stays bad, a handler with a ``repeat``
tells it again every ``repeat`` seconds.

``plan`` decides in the inventory's transaction who is told (a silence covering the
check makes it ``suppressed``, recorded at once); ``dispatch`` sends after that
transaction ended -- a slow relay must not hold the database -- and records each
notification as ``sent`` or ``failed`` with the reason. A webhook's URL holds its
credential: no message or log names it.
"""

import logging
import urllib.parse

from sqlalchemy import func, select

from mc_project.controller import mail
from mc_project.errors import CorpusError
from mc_project.health import scope, silences
from mc_project.inventory import db
from mc_project.inventory.health_models import Handler, Notification
from mc_project.inventory.models import utcnow

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 10
MAX_OUTPUT = 1000


def masked_target(handler_kind, target):
    """What may be shown of a handler's target: a mail address whole, a webhook's
    scheme and host only (its path and query are its credential)."""
    if handler_kind != "webhook":
        return target
    parts = urllib.parse.urlsplit(target)
    return "{}://{}/…".format(parts.scheme, parts.netloc.rpartition("@")[2])


def routed(sess, tenant_id, groups):
    """The handlers of ``tenant_id`` for a host in ``groups``."""
    found = sess.scalars(select(Handler).where(Handler.tenant_id == tenant_id).order_by(Handler.name)).all()
    return [handler for handler in found if handler.group_id is None or handler.group_id in groups]


def message(delivery):
    """``(subject, text)`` of a notification (a check's change, or a site walk's)."""
    again = " (still)" if delivery["repeat"] else ""
    if delivery.get("walk") is not None:
        subject = "[corpus] {state}{again}: site walk of {host}".format(again=again, **delivery)
        text = "{state}{again}: site walk {walk} of {host} (was {previous}). {output}".format(
            again=again, **delivery).strip()
        return subject, text
    subject = "[corpus] {state}{again}: {check} on {host}".format(again=again, **delivery)
    text = "{state}{again}: check {check} on host {host} (was {previous}). {output}".format(
        again=again, **delivery).strip()
    return subject, text


def plan(sess, row, check, host, previous, state, repeat=False, only=None, now=None):
    """The deliveries of one change (or repeat, to the handlers ``only``) of ``row``:
    suppressed ones recorded now, the others returned for ``dispatch``."""
    now = now or utcnow()
    groups = scope.host_groups(sess, host)
    silence = silences.covering(silences.active(sess, check.tenant_id, now), host["id"], groups, check.id)
    handlers = only if only is not None else routed(sess, check.tenant_id, groups)
    change = {"tenant_id": check.tenant_id, "state_id": row.id, "check": check.name, "host": host["name"],
              "previous": previous, "state": state, "repeat": repeat, "output": (row.output or "")[:MAX_OUTPUT],
              "at": now}
    if handlers:
        row.notified = now
    return deliveries_of(sess, handlers, change, silence)


def deliveries_of(sess, handlers, change, silence=None):
    """One delivery of ``change`` (a delivery's fields but its handler's) per handler:
    recorded at once as suppressed when ``silence`` covers it, else returned for ``dispatch``."""
    deliveries = []
    for handler in handlers:
        delivery = dict(change, handler_id=handler.id, handler=handler.name, kind=handler.kind,
                        target=handler.target)
        if silence is not None:
            record(sess, delivery, "suppressed", "Silenced by {} until {:%Y-%m-%d %H:%M} UTC: {}".format(
                silence.who, silences.aware(silence.until), silence.why), silence_id=silence.id)
        else:
            deliveries.append(delivery)
    return deliveries


def record(sess, delivery, status, detail, silence_id=None):
    # ``at`` is when the change was seen (the repeats count from it), not when the relay answered.
    sess.add(Notification(at=delivery["at"], tenant_id=delivery["tenant_id"], handler_id=delivery["handler_id"],
                          state_id=delivery["state_id"], silence_id=silence_id, handler_name=delivery["handler"],
                          check_name=delivery["check"], host_name=delivery["host"], previous=delivery["previous"],
                          state=delivery["state"], repeat=delivery["repeat"], status=status, detail=detail))


def send(delivery, smtp):
    """Send one notification; the sentence saying where it went (``CorpusError`` if it failed)."""
    subject, text = message(delivery)
    if delivery["kind"] == "mail":
        mail.send_mail(smtp, delivery["target"], subject, text)
        return "Mailed to {}.".format(delivery["target"])
    shown = masked_target("webhook", delivery["target"])
    try:
        # Imported here: corpus's runners import this module, and a controller installed
        # without the api extra (the README's plain install) has no httpx.
        import httpx
    except ImportError:
        raise CorpusError("The webhook {} was not posted: httpx is not installed "
                          "(pip install 'corpus[api]').".format(shown)) from None
    try:
        answer = httpx.post(delivery["target"], json={"text": text}, timeout=WEBHOOK_TIMEOUT)
    except httpx.HTTPError as exc:
        # The exception's text may hold the URL: only its type is said.
        raise CorpusError("The webhook {} could not be reached ({}).".format(shown, type(exc).__name__)) from None
    if answer.status_code >= 300:
        raise CorpusError("The webhook {} answered {}.".format(shown, answer.status_code))
    return "Posted to {} ({}).".format(shown, answer.status_code)


def dispatch(url, deliveries, smtp):
    """Send ``deliveries`` and record each one's outcome; the statuses, in order."""
    outcomes = []
    for delivery in deliveries:
        try:
            status, detail = "sent", send(delivery, smtp)
        except CorpusError as exc:
            status, detail = "failed", str(exc)
        except Exception as exc:  # pylint: disable=broad-except
            status, detail = "failed", "{} could not be sent: {}.".format(delivery["kind"], type(exc).__name__)
            log.exception("health: notification %s failed", delivery["handler"])
        outcomes.append((delivery, status, detail))
    if outcomes:
        with db.session(url) as sess:
            for delivery, status, detail in outcomes:
                record(sess, delivery, status, detail)
    return [status for _delivery, status, _detail in outcomes]


def last_told(sess, handler_id, state_id):
    """When ``handler_id`` was last told (or found silenced) of ``state_id``'s state."""
    return sess.scalar(select(func.max(Notification.at)).where(Notification.handler_id == handler_id,
                                                               Notification.state_id == state_id))
