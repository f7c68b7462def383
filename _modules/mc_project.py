"""Salt execution module for the corpus project engine (logic in ``mc_project``).

The projects root is the minion option or pillar key ``mc_project:projects_root``
(default ``/srv/projects``); a project's settings come from pillar
``makina-projects:NAME`` among others (see ``mc_project.settings``).
"""

import inspect
import logging
import os
import shlex
import sys

import salt.utils.args
from salt.exceptions import CommandExecutionError

try:
    from mc_project.common.vocabulary import PROJECTS_ROOT
    from mc_project.project import bundle, engine, layout
    from mc_project.project import settings as _settings
    from mc_project.errors import CorpusError

    HAS_CORPUS = True
except ImportError:  # pragma: no cover - corpus not installed on this minion
    HAS_CORPUS = False

log = logging.getLogger(__name__)

__virtualname__ = "mc_project"


def __virtual__():
    if not HAS_CORPUS:
        return False, "the corpus package (mc_project) is not importable"
    return __virtualname__


def _root(projects_root=None):
    return projects_root or __salt__["config.get"]("mc_project:projects_root", PROJECTS_ROOT)


def _pillar(name):
    _call(_settings.validate_name, name)  # a bad name: one sentence, not a traceback
    # __pillar__ holds plain values; pillar.get would hand back Salt 3008's masks.
    projects = __pillar__.get("makina-projects") or {}
    value = projects.get(name)
    if value is None:
        # The pillar's YAML types its keys too: "123:" is the int 123, "true:" True.
        typed = salt.utils.args.yamlify_arg(name)
        value = next((mapping for key, mapping in projects.items()
                      if not isinstance(key, str) and _same(key, typed)), None)
    return value if value not in ("", None) else {}


def _same(one, other):
    """Equal and of the same type (``1 == True`` and ``1 == 1.0`` are not the same)."""
    return type(one) is type(other) and (one == other or repr(one) == repr(other))  # nan


def _typed_args(kwargs):
    """The function and the arguments as the user typed them, when Salt kept them.

    ``salt-call`` keeps its command line in ``__opts__["fun"]``/``["arg"]``; a job
    from a master brings its published ``fun``/``arg`` as ``__pub_fun``/``__pub_arg``
    (to functions taking ``**kwargs``). Returns ``(fun, args)`` or ``(None, [])``.
    """
    if kwargs and kwargs.get("__pub_fun") and isinstance(kwargs.get("__pub_arg"), (list, tuple)):
        return kwargs["__pub_fun"], list(kwargs["__pub_arg"])
    arg = __opts__.get("arg")
    if __opts__.get("fun") and isinstance(arg, (list, tuple)):
        return __opts__["fun"], list(arg)
    return None, []


def _text(value, key, kwargs=None):
    """
    The text the user typed for argument ``key`` of the running function.

    Salt reads command line arguments as YAML: ``123`` reaches the function as the int
    123, ``true`` as True, ``null`` as None, ``0123`` as 123. Names, commits and
    release ids are text: take the typed text back from the command line when Salt
    kept it (and it reads as ``value``), else ``str(value)`` (``true``/``false`` for
    bools). None stays None unless the user typed it.
    """
    if isinstance(value, str):
        return value
    fun, args = _typed_args(kwargs)
    prefix = __virtualname__ + "."
    func = globals().get(fun[len(prefix):]) if fun and fun.startswith(prefix) else None
    if func is not None:
        positional, named = [], {}
        for arg in args:
            if isinstance(arg, dict) and arg.get("__kwarg__") is True:
                named.update((k, v) for k, v in arg.items() if k != "__kwarg__")
                continue
            arg_name, arg_value = (salt.utils.args.parse_kwarg(arg) if isinstance(arg, str)
                                   else (None, None))
            if arg_name:
                named[arg_name] = arg_value
            else:
                positional.append(arg)
        try:
            typed = inspect.signature(func).bind_partial(*positional, **named).arguments.get(key)
        except TypeError:
            typed = None
        if isinstance(typed, str) and _same(salt.utils.args.yamlify_arg(typed), value):
            return typed
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _bindings():
    def apply(high):
        return __salt__["state.high"](high, test=False, concurrent=True)

    return engine.SaltBindings(apply, {"salt": __salt__, "grains": __grains__,
                                       "pillar": __pillar__, "opts": __opts__})


def hook_salt_call():
    """
    How the git hooks call Salt on this host: the same salt-call and config as now.
    (Public so that the ``mc_project`` states can reach it: the loader hides ``_`` names.)

    CLI Example:

    .. code-block:: bash

        salt-call --local mc_project.hook_salt_call
    """
    exe = os.path.join(os.path.dirname(sys.executable), "salt-call")
    cmd = [exe if os.path.exists(exe) else "salt-call", "-c", __opts__.get("config_dir", "/etc/salt")]
    if __opts__.get("file_client") == "local":
        cmd.append("--local")
    return " ".join(shlex.quote(part) for part in cmd)


def _call(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except CorpusError as exc:
        __context__["retcode"] = 1
        raise CommandExecutionError(str(exc)) from None
    except Exception as exc:  # a bug: one sentence for the user, the traceback in Salt's log
        log.exception("corpus failed unexpectedly")
        __context__["retcode"] = 1
        raise CommandExecutionError("corpus failed unexpectedly: {}: {} (the traceback is in "
                                    "Salt's log).".format(type(exc).__name__, exc)) from None


def _job_id(kwargs):
    return kwargs.get("__pub_jid") or None


def init_project(name, projects_root=None, branch="main"):
    """
    Create the layout of project ``name`` (directories, bare ``git/project.git`` and
    ``git/pillar.git`` with corpus hooks). Idempotent; returns what changed.

    CLI Example:

    .. code-block:: bash

        salt-call --local mc_project.init_project myapp
    """
    name = _text(name, "name")
    return _call(layout.init_project, name, _root(projects_root), hook_salt_call(), branch,
                 pillar=_pillar(name))


def settings(name, projects_root=None, **kwargs):
    """
    Print the whole common mapping of project ``name``; keyword arguments override.

    CLI Example:

    .. code-block:: bash

        salt-call --local mc_project.settings myapp env=staging
    """
    name = _text(name, "name", kwargs)
    overrides = salt.utils.args.clean_kwargs(**kwargs)
    return _call(_settings.build, name, _root(projects_root), pillar=_pillar(name), overrides=overrides)


def deploy(name, rev=None, objects=None, old=None, ref=None, who=None, push_pid=None,
           projects_root=None, **kwargs):
    """
    Deploy project ``name``: ``rev`` (default: the deploy branch head) through every
    phase, switch, health check, automatic rollback on failure. Returns the deploy
    record with per-phase results. Keyword arguments override settings.

    CLI Example:

    .. code-block:: bash

        salt-call --local mc_project.deploy myapp
    """
    name = _text(name, "name", kwargs)
    job = _job_id(kwargs)
    overrides = salt.utils.args.clean_kwargs(**kwargs)
    return _call(engine.deploy, name, _root(projects_root), _bindings(),
                 rev=_sha(rev, "rev", kwargs), objects=objects, old=_sha(old, "old", kwargs),
                 ref=ref, pillar=_pillar(name),
                 overrides=overrides or None, job_id=job, who=who, push_pid=push_pid)


def _sha(value, key, kwargs=None):
    # Salt's YAML parsing turns an all-digit sha into an int (1234567, or 0123 into 123):
    # give git what was typed, short or long, and let git resolve it. Without the typed
    # text, 0 can only be git's null sha (a new or deleted branch): no sha is that short.
    if type(value) is int and value == 0 and _text(value, key, kwargs) == "0":
        return "0" * 40
    return _text(value, key, kwargs)


def deploy_pillar(name, archive, rev=None, ref=None, old=None, who=None, projects_root=None, **kwargs):
    """
    Apply a push to the private pillar: redeploy the live commit with it.

    CLI Example:

    .. code-block:: bash

        salt-call --local mc_project.deploy_pillar myapp archive=/tmp/pillar.tar
    """
    name = _text(name, "name", kwargs)
    return _call(engine.deploy_pillar, name, _root(projects_root), _bindings(), archive,
                 rev=_sha(rev, "rev", kwargs), ref=ref, pillar=_pillar(name),
                 job_id=_job_id(kwargs), who=who)


def releases(name, projects_root=None):
    """
    List the kept releases: id, commit, mode, status, time, live.

    CLI Example:

    .. code-block:: bash

        salt-call --local mc_project.releases myapp
    """
    name = _text(name, "name")
    return _call(engine.list_releases, name, _root(projects_root))


def snapshots(name, projects_root=None):
    """
    List the kept snapshots (``data/`` and the database dump taken before each deploy),
    oldest first: id, time, data_bytes, database (sqlite, postgresql or None),
    database_bytes.

    CLI Example:

    .. code-block:: bash

        salt-call --local mc_project.snapshots myapp
    """
    name = _text(name, "name")
    return _call(engine.list_snapshots, name, _root(projects_root))


def rollback(name, release_id=None, data=False, projects_root=None, **kwargs):
    """
    Make a kept release live again (default: the one before the live one); with
    ``data=True`` also restore its data snapshot and run the project's rollback phase.

    CLI Example:

    .. code-block:: bash

        salt-call --local mc_project.rollback myapp
        salt-call --local mc_project.rollback myapp 20261122T101500-ab12cd34 data=True
    """
    name = _text(name, "name", kwargs)
    return _call(engine.rollback, name, _root(projects_root), _bindings(),
                 release_id=_text(release_id, "release_id", kwargs), data=bool(data),
                 pillar=_pillar(name), job_id=_job_id(kwargs))


def status(name, projects_root=None):
    """
    Say what is live, since when, and whether a deploy is running (and whose).

    CLI Example:

    .. code-block:: bash

        salt-call --local mc_project.status myapp
    """
    name = _text(name, "name")
    return _call(engine.status, name, _root(projects_root), pillar=_pillar(name))


def fetch_bundle(name, source, commit=None, projects_root=None):
    """
    Fetch a bundle (from a cooking target's ``archives/bundles`` path or URL) into this
    project's bundles: its manifest, and the objects this host lacks, each verified.
    Returns the manifest without its file list, with how many objects were fetched.
    ``commit`` defaults to the deploy branch head.

    CLI Example:

    .. code-block:: bash

        salt-call --local mc_project.fetch_bundle myapp http://staging:8080/bundles/
    """
    name = _text(name, "name")
    def fetch():
        cfg = _settings.build(name, _root(projects_root), pillar=_pillar(name))
        wanted = _sha(commit, "commit") or engine.branch_head(cfg["paths"]["project_git"], cfg["deploy_branch"])
        if not wanted and not str(source).endswith((".json", ".tar.gz")):
            raise CorpusError("Say which commit to fetch: the deploy branch has no commit yet.")
        stats = {}
        manifest = bundle.fetch(source, wanted, cfg["paths"]["bundles"], stats=stats)
        return dict(bundle.summary(manifest), **stats)

    return _call(fetch)


def branch_head(name, projects_root=None):
    """
    Commit of the deploy branch (None before the first push); used by the
    ``mc_project.deployed`` state.

    CLI Example:

    .. code-block:: bash

        salt-call --local mc_project.branch_head myapp
    """
    name = _text(name, "name")
    def head():
        cfg = _settings.build(name, _root(projects_root), pillar=_pillar(name))
        return engine.branch_head(cfg["paths"]["project_git"], cfg["deploy_branch"])

    return _call(head)


def stop(name, projects_root=None):
    """
    Stop the project's app and its supervisor.

    CLI Example:

    .. code-block:: bash

        salt-call --local mc_project.stop myapp
    """
    name = _text(name, "name")
    return _call(engine.stop, name, _root(projects_root), pillar=_pillar(name))


def start(name, projects_root=None):
    """
    Start the project's supervisor, front and live release again (after ``stop``).

    CLI Example:

    .. code-block:: bash

        salt-call --local mc_project.start myapp
    """
    name = _text(name, "name")
    return _call(engine.start, name, _root(projects_root), pillar=_pillar(name))


def recover(name, projects_root=None, **kwargs):
    """
    Put back what an interrupted deploy or rollback of ``name`` left (the next push
    does the same first): traffic back on the release that was live, the new one
    stopped and set aside, ``data/`` kept when the live app may have written to it.

    CLI Example:

    .. code-block:: bash

        salt-call --local mc_project.recover myapp
    """
    name = _text(name, "name", kwargs)
    return _call(engine.recover, name, _root(projects_root), _bindings(), pillar=_pillar(name),
                 job_id=_job_id(kwargs))
