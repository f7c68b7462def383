"""The schema of a project's settings: every key a pillar may set, its type and default.

``ProjectSettings`` describes the keys of the common mapping that a user writes
(in ``.salt/PILLAR.sample``, the private pillar, pillar ``makina-projects:NAME``
or call arguments). Each field's docstring is its documentation; its
``allowed`` phrase says what a value may be, for error messages.

Types are strict: a number is never a bool nor a string ("30" is refused), a
whole number is never a float, and ``.inf``/``.nan`` are refused. ``validate``
checks a mapping and raises one ``CorpusError`` sentence for the first bad
value; it hands back nothing but the verdict, so the caller keeps its plain
dict (templates read it and phases add to it).
"""

import copy
import ipaddress
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
)

from mc_project.common.vocabulary import ENV_TYPES as ENVS, MODES
from mc_project.errors import CorpusError

BRANCH_RE = re.compile(r"^(?!.*\.\.)(?!/)(?!.*//)[A-Za-z0-9._/-]{1,200}(?<![/.])$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")

# How many characters of a refused value a message shows.
SHOWN_CHARS = 80


def check(test):
    """An after-validator that refuses a value for which ``test`` is false."""

    def check(value):
        if not test(value):
            raise ValueError("refused")
        return value

    return AfterValidator(check)


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_url_path(text):
    return text.startswith("/") and not any(
        ch.isspace() or unicodedata.category(ch).startswith("C") for ch in text)


def _seconds(low, high, low_included=True):
    bound = {"ge": low} if low_included else {"gt": low}
    return Annotated[float, Field(le=high, allow_inf_nan=False, **bound)]


def _rule(allowed, default=None, **kwargs):
    """A field whose value may be what ``allowed`` says (a phrase after "must be")."""
    if "default_factory" not in kwargs:
        kwargs["default"] = default
    return Field(json_schema_extra={"allowed": allowed}, **kwargs)


BranchName = Annotated[str, check(BRANCH_RE.fullmatch)]
IPAddress = Annotated[str, check(_is_ip)]
UrlPath = Annotated[str, check(_is_url_path)]
UserName = Annotated[str, check(lambda text: text == "" or USER_RE.fullmatch(text))]
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME_RE.pattern)]
EnvValue = StrictStr | StrictBool | StrictInt | StrictFloat


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", use_attribute_docstrings=True)


class HealthSettings(_Strict):
    """How the engine decides that a new release answers before traffic moves to it."""

    path: UrlPath = _rule("a URL path starting with '/' without spaces or control characters",
                          "/")
    """URL path the health check requests."""

    timeout: _seconds(0, 3600, low_included=False) = _rule(
        "a number of seconds greater than 0 and at most 3600", 30)
    """Seconds the release has to answer (env defaults: dev 20, staging 30, prod 60)."""

    status: StrictInt = _rule("an HTTP status code from 100 to 599", 200, ge=100, le=599)
    """HTTP status the answer must have."""


class BundleSettings(_Strict):
    """Where final mode takes its bundles from."""

    source: StrictStr = _rule("a path or URL (a string)", "")
    """Path or URL of a cooking target's bundles (empty: this host's ``archives/bundles``)."""


class ProjectSettings(_Strict):
    """The settings of one project that a pillar or call argument may set."""

    env: Literal["dev", "staging", "prod"] = _rule("one of dev, staging, prod", "dev")
    """Kind of environment; picks the env defaults and, unless ``mode`` says otherwise, the mode."""

    mode: Literal["", "editable", "cooking", "final"] = _rule("one of editable, cooking, final",
                                                               "")
    """How releases are made: editable (run from the checkout), cooking (build a release and a
    bundle) or final (unpack a bundle, never build); empty: dev gives editable, staging cooking,
    prod final."""

    deploy_branch: BranchName = _rule("a git branch name such as main or release/v1", "main")
    """The branch whose pushes deploy; pushes to other branches are kept, not deployed. Letters,
    digits, '.', '_', '-' and '/'; no '..' or '//'; not starting with '/' nor ending with '/' or
    '.'."""

    keep_releases: StrictInt = _rule("a whole number from 1 to 1000", 5, ge=1, le=1000)
    """How many successful releases stay on disk (the live one included)."""

    keep_failed: StrictInt = _rule("a whole number from 0 to 1000", 5, ge=0, le=1000)
    """How many failed releases stay archived with their logs."""

    lock_timeout: _seconds(0, 86400) = _rule("a number of seconds from 0 to 86400", 60)
    """Seconds a deploy waits for the one already running before it gives up."""

    port: StrictInt = _rule("a whole number from 0 to 65535 (0: a port derived from the name)",
                            0, ge=0, le=65535)
    """Port the web process listens on; 0: a stable port in 20000-31999 derived from the
    name (below the kernel's ephemeral ports)."""

    bind: IPAddress = _rule("an IP address such as 127.0.0.1 or 0.0.0.0", "127.0.0.1")
    """Address the web process listens on; a container's proxy on its node needs 0.0.0.0."""

    environment: dict[EnvName, EnvValue] = _rule(
        "a mapping of environment variable names to strings, numbers or true/false",
        default_factory=dict)
    """Environment variables given to the app's processes (like config vars); values are
    strings, numbers or true/false and reach the processes as strings."""

    web: StrictStr = _rule("a command line (a string)", "")
    """Command of the web process; empty: the Procfile's ``web:`` line, else a static server."""

    static_dir: StrictStr = _rule("a directory (a string)", "")
    """Directory a static site serves; empty: ``public/`` when present, else the tree root."""

    health: HealthSettings = _rule("a mapping with path, timeout and status",
                                   default_factory=HealthSettings)
    """The health check of a new release."""

    bundle: BundleSettings = _rule("a mapping with source", default_factory=BundleSettings)
    """Where bundles come from (final mode)."""

    editable_keep: list[StrictStr] = _rule(
        "a list of file or directory names",
        default_factory=lambda: [".venv", "node_modules", "__pycache__"])
    """Names an editable deploy keeps in the checkout when it cleans it (built environments)."""

    run_as: UserName = _rule(
        "empty or a Linux user name (a lowercase letter or '_', then up to 31 lowercase letters, "
        "digits, '_' or '-')", "")
    """User the app runs as; empty: the engine chooses it."""

    drain_timeout: _seconds(0, 3600) = _rule("a number of seconds from 0 to 3600", 30)
    """Seconds the old release may finish in-flight requests after traffic moved to the new one."""

    database: Literal["", "sqlite", "postgresql"] = _rule("one of sqlite, postgresql (or empty)", "")
    """The app's database, reached through ``DATABASE_URL``: empty or ``sqlite``, an SQLite file
    under ``data/`` (``data/db.sqlite3``, no server needed); ``postgresql``, a database and role
    of the project's own that corpus creates on the server ``database_server`` names. Either is
    dumped into ``snapshots/<id>/`` before each deploy and rolls back with the code."""

    database_server: StrictStr = _rule("a postgresql:// URL (a string)", "")
    """With ``database: postgresql``: the admin connection URL of the PostgreSQL server, such as
    ``postgresql://admin:PASSWORD@127.0.0.1:5432/postgres`` (a role allowed to create roles and
    databases); the app gets a role of its own on the same host and port. Keep it in a pillar,
    not in the repository."""

    keep_snapshots: StrictInt = _rule("a whole number from 0 to 1000 (0: keep_releases)", 0,
                                      ge=0, le=1000)
    """How many snapshots (``data/`` and the database dump taken before a deploy) stay on disk,
    newest first; 0: as many as ``keep_releases``."""

    data: dict[Any, Any] = _rule("a mapping", default_factory=dict)
    """The project's own values, anything inside; ``{data.key}`` references reach them."""


# Env defaults sit between the built-in defaults and PILLAR.sample.
ENV_DEFAULTS = {
    "dev": {"health": {"timeout": 20}},
    "staging": {},
    "prod": {"health": {"timeout": 60}},
}


def defaults(model=ProjectSettings):
    """The built-in defaults of ``model`` as a plain (new) dict."""
    out = {}
    for name, field in model.model_fields.items():
        value = field.get_default(call_default_factory=True)
        if isinstance(value, BaseModel):
            value = defaults(type(value))
        out[name] = copy.deepcopy(value)
    return out


def known_keys(model=ProjectSettings):
    """The keys ``model`` knows, in order."""
    return tuple(model.model_fields)


def _show(value):
    text = repr(value)
    if len(text) > SHOWN_CHARS:
        text = text[:SHOWN_CHARS - 3] + "..."
    return text


def _and(names):
    names = list(names)
    return names[0] if len(names) == 1 else "{} and {}".format(", ".join(names[:-1]), names[-1])


def _is_model(annotation):
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def sentence(error, model=ProjectSettings):
    """One sentence for one pydantic error (an item of ``ValidationError.errors()``)."""
    loc = list(error["loc"])
    value = error.get("input")
    keys = []
    while loc and _is_model(model):
        item = loc.pop(0)
        if item not in model.model_fields:
            key = ".".join(keys + [str(item)])
            where = " under {}".format(".".join(keys)) if keys else ""
            tail = "" if keys else "; put your own values under data"
            known = _and(known_keys(model))
            return f"Setting {key} is unknown; known settings{where} are {known}{tail}."
        field = model.model_fields[item]
        keys.append(item)
        allowed = field.json_schema_extra["allowed"]
        model = field.annotation
    key = ".".join(keys)
    if key == "env":
        return "Unknown env {}: use one of {}.".format(_show(value), ", ".join(ENVS))
    if key == "mode":
        return "Unknown mode {}: use one of {}.".format(_show(value), ", ".join(MODES))
    if key == "environment" and loc:
        name = loc[0]
        if len(loc) > 1 and loc[1] == "[key]":
            return (f"Setting environment names the variable {_show(value)}, which is not a "
                    "variable name: use letters, digits and '_', not starting with a digit.")
        key, allowed = f"environment.{name}", "a string, a number or true/false"
    elif key == "editable_keep" and loc:
        key = f"editable_keep[{loc[0]}]"
        allowed = "a file or directory name (a string)"
    return f"Setting {key} must be {allowed}, not {_show(value)}."


def validate(mapping, ignore=(), model=ProjectSettings):
    """Check ``mapping`` against ``model``; keys in ``ignore`` are skipped.

    Returns ``mapping`` itself, unchanged. Raises ``CorpusError`` naming the first
    bad key and what it may be.
    """
    if not isinstance(mapping, dict):
        raise CorpusError(f"Settings must be a mapping, not {_show(mapping)}.")
    checked = {key: value for key, value in mapping.items() if key not in ignore}
    try:
        model.model_validate(checked)
    except ValidationError as exc:
        raise CorpusError(sentence(exc.errors()[0], model)) from None
    return mapping
