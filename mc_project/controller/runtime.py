"""What the controller's runners share: its settings, its inventory, and Salt.

A ``Controller`` is built from the salt-master's options (inside a runner,
``__opts__``). It is the controller's only Salt client: it calls execution
modules on minions through Salt's ``LocalClient``, manages minion keys (the
``key`` wheel and the master's key store), fires and listens to events on the
master's bus, and runs jobs (``mc_project.jobs``) whose steps it registers.
"""

import contextlib
import datetime
import os
import threading
import time

from cryptography.hazmat.primitives import serialization
import salt.cache
import salt.client
import salt.key
import salt.utils.jid
import salt.wheel

from mc_project import jobs, sealed
from mc_project.common import messages
from mc_project.controller import config, events, master_bus, operations, steps
from mc_project.errors import CorpusError
from mc_project.inventory import db


class Controller:
    def __init__(self, opts, client=None):
        self.opts = opts
        self.settings = config.controller_settings(opts)
        self.url = self.settings["db_url"]
        self._given_client = client  # serves every thread (a test's)
        self._idle_clients = []  # Salt clients lent to one call at a time (see salt_client)
        self._clients_lock = threading.Lock()
        self._publisher = None  # the master's event bus, to fire on (see fire)
        self._publisher_lock = threading.Lock()
        self._wheel = None
        self._events_key = None
        db.init(self.url, secrets_key=self.settings["secrets_key"])

    # -- Salt

    @contextlib.contextmanager
    def salt_client(self):
        """Salt's LocalClient, for one call. Steps of a job run at the same time, in threads,
        and a client (its event subscription) serves one call at a time: an idle one is lent,
        or one is made. Making one loads Salt's module index (about 0.45 s of CPU, the API's
        largest cost with many jobs at once), so they are kept, not made per thread."""
        if self._given_client is not None:
            yield self._given_client
            return
        with self._clients_lock:
            client = self._idle_clients.pop() if self._idle_clients else None
        if client is None:
            client = salt.client.get_local_client(mopts=self.opts)
        try:
            yield client
        finally:
            with self._clients_lock:
                self._idle_clients.append(client)

    def serves_custom_modules(self):
        """Whether the master's file roots hold Salt modules of their own (``_modules``,
        ``_states``...) that minions must sync before a highstate."""
        for roots in (self.opts.get("file_roots") or {}).values():
            for root in roots:
                try:
                    if any(entry.name.startswith("_") and entry.is_dir() for entry in os.scandir(root)):
                        return True
                except OSError:
                    continue
        return False

    @property
    def wheel(self):
        if self._wheel is None:
            self._wheel = salt.wheel.WheelClient(self.opts)
        return self._wheel

    def answer(self, minion, fun, *args, timeout=300, **kwargs):
        """``minion``'s whole answer to ``fun`` (``{"ret", "retcode", "jid"}``), or None when it
        did not answer within ``timeout`` seconds (or no such minion is known)."""
        # Not LocalClient.cmd: its wait polls the bus a hundred times a second, and each
        # client's subscription decodes every event of the master. The return is waited for
        # on the process's one reader of the bus (master_bus), subscribed before publishing.
        jid = _new_jid(self.opts)
        returned = _return_tag(jid, minion)
        with self.listening(returned) as bus:
            if not self._publish(minion, fun, args, kwargs, timeout, jid=jid, required=False):
                return None
            return _answer_of(bus.get_event(wait=timeout, tag=returned, full=True))

    def answers(self, minions, fun, *args, timeout=60, **kwargs):
        """``{minion: its whole answer}`` of those of ``minions`` (a list target) that answered
        ``fun`` within ``timeout`` seconds; one publication for all of them."""
        if not minions:
            return {}
        with self.salt_client() as client:
            returns = client.cmd(list(minions), fun, list(args), tgt_type="list", timeout=timeout,
                                 kwarg=kwargs, full_return=True, expect_minions=False)
        return {minion: answer for minion, answer in (returns or {}).items()
                if minion in minions and isinstance(answer, dict) and "ret" in answer}

    def answers_as_they_come(self, minions, fun, *args, timeout=300, **kwargs):
        """Yield ``(minion, answer)`` as each of ``minions`` answers ``fun`` (``answer`` as
        ``answer()`` gives it), first come first yielded (``answers`` waits for all): a run on
        many minions shows each one's result when it has it. After ``timeout`` seconds Salt asks
        the minions that have not answered whether they still run it, and waits for those that
        do; one that does not answer is not yielded (or yielded as ``{"failed": True}``)."""
        with self.salt_client() as client:
            for returns in client.cmd_iter(list(minions), fun, list(args), timeout=timeout, tgt_type="list",
                                           kwarg=kwargs):
                for minion, answer in (returns or {}).items():
                    yield minion, answer

    def call(self, minion, fun, *args, timeout=300, again=False, **kwargs):
        """Run ``fun`` on ``minion`` and return what it returned; a failure raises one sentence.

        With ``again`` (``fun`` is safe to run twice), a publication the minion missed is made
        again as soon as that is known (``answer_again``), not after ``timeout``.
        """
        if again:
            answer = self.answer_again(minion, fun, *args, timeout=timeout, **kwargs)
        else:
            answer = self.answer(minion, fun, *args, timeout=timeout, **kwargs)
        if answer is None:
            raise CorpusError("Minion {} did not answer {} within {} s.".format(minion, fun, timeout))
        data = answer.get("ret") if isinstance(answer, dict) else answer
        failed = isinstance(answer, dict) and answer.get("retcode", 0) not in (0, None)
        if isinstance(data, str) and (failed or data.startswith(("ERROR", "'{}' is not available".format(fun)))):
            raise CorpusError("{} on {} failed: {}".format(fun, minion, messages.summary(data, "no answer")))
        if failed and not _state_succeeded(data):
            raise CorpusError("{} on {} failed: {}".format(fun, minion, _state_failures(data)))
        return data

    def answer_again(self, minion, fun, *args, timeout=600, publications=3, **kwargs):
        """``minion``'s answer to ``fun`` as ``answer`` gives it, or None after ``timeout`` seconds.

        A minion can miss a publication: one that reconnects (a fresh one re-authenticating,
        one restarted) drops what was published while it was away, and one that has just
        connected may not be subscribed yet when the master publishes. It would be waited for
        until ``timeout``. ``fun`` is published again, up to ``publications`` times in all (it
        must be safe to run twice, as a state run is), when the minion's start event says it
        is back, or when, asked after ``LOST_CHECK`` seconds without an answer, the minion says
        it does not run the job (Salt's ``saltutil.find_job``; a return on its way gets
        ``LATE_RETURN`` seconds more). The first answer to any of the publications is the answer.
        """
        deadline = time.monotonic() + timeout
        started = "salt/minion/{}/start".format(minion)
        with self.listening(started) as bus:
            returns, asked = set(), set()
            jid, publish_at, check_at = None, time.monotonic(), None
            while True:
                now = time.monotonic()
                if publish_at is not None and now >= publish_at:
                    jid = self._publish_watched(bus, returns, minion, fun, args, kwargs, deadline)
                    publish_at = None
                    check_at = now + LOST_CHECK
                elif check_at is not None and now >= check_at:
                    self._publish_watched(bus, asked, minion, "saltutil.find_job", [jid], {}, now + LOST_CHECK)
                    check_at = now + LOST_CHECK
                if now >= deadline:
                    return None
                wake = min(moment for moment in (publish_at, check_at, deadline) if moment is not None)
                event = bus.get_event(wait=max(wake - now, 0.01), full=True)
                tag = event["tag"] if event else ""
                if tag in returns:
                    return _answer_of(event)
                again = len(returns) < publications
                if tag == started and again:
                    publish_at = time.monotonic()
                elif tag in asked and again and not (event["data"] or {}).get("return"):
                    publish_at = time.monotonic() + LATE_RETURN  # the minion does not run it

    def _publish_watched(self, bus, tags, minion, fun, args, kwargs, deadline):
        """Publish ``fun`` under a job id of its own, its return tag added to ``tags`` and
        listened for on ``bus`` first; the job id."""
        jid = _new_jid(self.opts)
        tags.add(_return_tag(jid, minion))
        bus.add(_return_tag(jid, minion))
        self._publish(minion, fun, args, kwargs, max(deadline - time.monotonic(), 1), jid=jid)
        return jid

    def _publish(self, minion, fun, args, kwargs, timeout, jid="", required=True):
        """Publish ``fun`` to ``minion`` without waiting; its job id. No minion of that name:
        a refusal in one sentence, or 0 when not ``required``."""
        with self.salt_client() as client:
            jid = client.cmd_async(minion, fun, list(args), kwarg=kwargs, timeout=int(timeout) + 1, jid=jid)
        if not jid and required:
            raise CorpusError("The master did not publish {} to {}.".format(fun, minion))
        return jid

    def ping(self, minion, timeout=5):
        answer = self.answer(minion, "test.ping", timeout=timeout)
        return isinstance(answer, dict) and answer.get("ret") is True

    def listening(self, *prefixes):
        """The master's events whose tag starts with one of ``prefixes`` (all events when none
        is given), from now on (a ``with`` block; ``master_bus.Subscription``)."""
        subscription = master_bus.for_master(self.opts).subscribe(*prefixes)
        if subscription is None:
            raise CorpusError("The master's event bus cannot be reached (in {}): is the master running?".format(
                self.opts["sock_dir"]))
        return subscription

    def wait_for_ping(self, minion, timeout=120, events=None):
        """Whether ``minion`` answered ``test.ping`` within ``timeout`` seconds.

        With ``events`` (from ``listening()``, entered before the minion was
        started), its start event is the answer: a minion fires it once it has
        authenticated and subscribed to publications, and a ping sent before the
        minion is connected only times out. Without the event, pings tell.
        """
        deadline = time.monotonic() + timeout
        if events is not None and events.get_event(
                wait=timeout, tag="salt/minion/{}/start".format(minion), full=True):
            return True
        while True:
            left = deadline - time.monotonic()
            if self.ping(minion, timeout=max(min(left, 10), 2)):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(1)

    def wait_for_minion(self, minion, timeout=120):
        if not self.wait_for_ping(minion, timeout):
            raise CorpusError("Minion {} did not answer within {} s.".format(minion, timeout))

    def falls_silent(self, minion, timeout=20):
        """Whether ``minion`` stops answering ``test.ping`` within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(1)
            if not self.ping(minion, timeout=3):
                return True
        return False

    def key_fingerprints(self, minion):
        """``{status: fingerprint}`` of ``minion``'s keys known to the master."""
        found = self.wheel.cmd("key.finger", [minion], print_event=False) or {}
        return {status: keys[minion] for status, keys in found.items()
                if isinstance(keys, dict) and minion in keys}

    def accept_key(self, minion, public_key, timeout=60):
        """Accept ``minion``'s pending key, only if it is ``public_key`` (PEM).

        Keys are compared by their numbers, not their text: the master may keep
        a key in another PEM encoding than the one the minion wrote.
        """
        wanted = _key_numbers(public_key)
        deadline = time.monotonic() + timeout
        while True:
            for status in ("minions", "minions_pre"):
                path = os.path.join(self.opts["pki_dir"], status, minion)
                if not os.path.isfile(path):
                    continue
                with open(path, encoding="utf-8") as fh:
                    if _key_numbers(fh.read()) != wanted:
                        raise CorpusError("The key minion {} offers is not the one it was given; "
                                          "it was not accepted.".format(minion))
                if status == "minions":
                    return
                self.wheel.cmd("key.accept", [minion], print_event=False)
                break
            else:
                if time.monotonic() > deadline:
                    raise CorpusError("Minion {} did not offer its key within {} s.".format(minion, timeout))
                time.sleep(1)

    def _key_cache(self):
        """The master's key store (the ``keys`` bank salt-key itself uses)."""
        return salt.cache.Cache(self.opts, driver=self.opts["keys.cache_driver"])

    def accepted_key(self, minion):
        """The public key the master accepts for ``minion``, or None."""
        found = self._key_cache().fetch("keys", minion) or {}
        return found.get("pub") if found.get("state") == "accepted" else None

    def seed_key(self, minion, public_key):
        """Accept ``public_key`` for ``minion`` before it offers any (a pending, rejected or
        denied key goes)."""
        cache = self._key_cache()
        cache.flush("denied_keys", minion)
        cache.store("keys", minion, {"state": "accepted", "pub": public_key})

    def seal(self, minion, text):
        """``text`` sealed to ``minion``'s accepted key: the job's load (kept in the job cache) holds
        only what that minion can open."""
        return sealed.seal_to_minion(self.opts["pki_dir"], minion, text)

    def delete_key(self, minion):
        """Forget every key of ``minion``, as ``salt-key -d`` does."""
        with salt.key.Key(self.opts) as keys:
            keys.delete_key(match_dict={"minions": [minion], "minions_pre": [minion],
                                        "minions_rejected": [minion], "minions_denied": [minion]})

    def fire(self, tag, data):
        """Fire an event on the master's bus, signed (see ``events.py``).

        A job fires an event at each change of each step, so the connection to the bus is
        kept and shared by the threads, one at a time (opening one per event was a tenth of
        the API's time with 8 jobs at once); one that fails (the master restarted) is
        opened again, once."""
        if self._events_key is None:
            self._events_key = events.key(self.opts)
        signed = events.sign(self._events_key, tag, data)
        with self._publisher_lock:
            if self._publisher is not None:
                try:
                    if self._publisher.fire_event(dict(signed), tag):
                        return
                except Exception:  # pylint: disable=broad-except
                    pass
                self.close_publisher()
            self._publisher = salt.utils.event.get_master_event(self.opts, self.opts["sock_dir"], listen=False)
            self._publisher.fire_event(signed, tag)

    def close_publisher(self):
        if self._publisher is not None:
            self._publisher.destroy()
            self._publisher = None

    def __del__(self):
        # A runner's controller lives for one call: its connection to the bus is closed
        # with it (Salt warns of one left to the garbage collector).
        try:
            self.close_publisher()
        except Exception:  # pylint: disable=broad-except
            pass

    # -- jobs

    def jobs(self, registry=None):
        """The job manager, with every controller step registered."""
        if registry is None:
            registry = self.registry()
        return jobs.Jobs(self.url, registry=registry, fire=self.fire, plans=operations.PLANS)

    def registry(self):
        """Every controller step, bound to this controller."""
        return steps.registry(self)


def _key_numbers(pem):
    try:
        return serialization.load_pem_public_key(pem.strip().encode()).public_numbers()
    except (ValueError, TypeError):
        raise CorpusError("A minion key is not a PEM public key.") from None


# A call published again (``answer_again``): how long without an answer before the minion is
# asked whether it runs it, and how long a return on its way is waited for after "no".
LOST_CHECK = 10
LATE_RETURN = 1
_JIDS_LOCK = threading.Lock()
_LAST_JID = [""]


def _new_jid(opts):
    """A job id for a publication, known before it is made so that its return is listened for
    first. Salt's are the time to the microsecond: one a thread of this process took in the
    same microsecond is moved on by one."""
    with _JIDS_LOCK:
        jid = salt.utils.jid.gen_jid(opts)
        if jid <= _LAST_JID[0]:
            last = datetime.datetime.strptime(_LAST_JID[0][:20], "%Y%m%d%H%M%S%f")
            jid = "{:%Y%m%d%H%M%S%f}".format(last + datetime.timedelta(microseconds=1)) + jid[20:]
        _LAST_JID[0] = jid
        return jid


def _return_tag(jid, minion):
    return "salt/job/{}/ret/{}".format(jid, minion)


def _answer_of(event):
    """A minion's whole answer from its return event (None: no event)."""
    if not event:
        return None
    data = event.get("data") or {}
    return {"ret": data.get("return"), "retcode": data.get("retcode", 0), "jid": data.get("jid")}


def _state_succeeded(data):
    return isinstance(data, dict) and data and all(
        isinstance(item, dict) and item.get("result", False) is not False for item in data.values())


def _state_failures(data):
    if isinstance(data, dict):
        failed = [item.get("comment", "") for item in data.values()
                  if isinstance(item, dict) and item.get("result") is False]
        if failed:
            return "; ".join(messages.summary(str(comment), "no answer") for comment in failed[:3])
    if isinstance(data, list):
        return "; ".join(messages.summary(str(item), "no answer") for item in data[:3])
    return messages.summary(str(data), "no answer")
