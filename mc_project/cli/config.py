"""Where the controller, the user, the default environment and the token come from.

The file is ``~/.makinastates.conf`` (``CORPUS_CONFIG`` names another), INI with one
``[corpus]`` section::

    [corpus]
    url = http://controller.example.com:8400
    user = alice
    env = alice-dev

The token ``corpus login`` gets is kept in ``~/.config/corpus/token`` (0600); a
``token =`` line in the file is read too. Environment variables (``CORPUS_URL``,
``CORPUS_USER``, ``CORPUS_ENV``, ``CORPUS_TOKEN``) override the file, and the
command's flags (``--url``, ``--token``, ``--env``...) override both.
"""

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import EXIT_BAD_INPUT, CliError

SECTION = "corpus"
KEYS = ("url", "user", "env", "token")
ENV_VARS = {"url": "CORPUS_URL", "user": "CORPUS_USER", "env": "CORPUS_ENV", "token": "CORPUS_TOKEN"}
CONFIG_ENV_VAR = "CORPUS_CONFIG"


def config_path():
    return Path(os.environ.get(CONFIG_ENV_VAR) or Path.home() / ".makinastates.conf")


def state_dir():
    """``~/.config/corpus``: the token and the known_hosts of the environments' SSH."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "corpus"


def token_path():
    return state_dir() / "token"


def known_hosts_path():
    return state_dir() / "known_hosts"


@dataclass
class Settings:
    url: str = ""
    user: str = ""
    env: str = ""
    token: str = ""
    json: bool = False

    def require_url(self):
        if not self.url:
            raise CliError(
                f"No controller URL: set url in {config_path()}, CORPUS_URL or --url", EXIT_BAD_INPUT)
        return self.url.rstrip("/")


def read_file(path=None):
    """The ``[corpus]`` section of the file as a dict (empty when there is no file)."""
    path = Path(path or config_path())
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except FileNotFoundError:
        return {}
    except (OSError, configparser.Error) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CliError(f"Cannot read {path}: {first}", EXIT_BAD_INPUT) from None
    if not parser.has_section(SECTION):
        return {}
    return {key: value.strip() for key, value in parser.items(SECTION) if key in KEYS and value.strip()}


def read_token_file():
    try:
        return token_path().read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise CliError(f"Cannot read {token_path()}: {exc.strerror}", EXIT_BAD_INPUT) from None


def load(flags=None, environ=None):
    """The settings: flags over environment variables over the file over the token file."""
    environ = os.environ if environ is None else environ
    values = dict(read_file())
    if not values.get("token"):
        token = read_token_file()
        if token:
            values["token"] = token
    for key, var in ENV_VARS.items():
        if environ.get(var):
            values[key] = environ[var]
    for key, value in (flags or {}).items():
        if value not in (None, ""):
            values[key] = value
    return Settings(**{key: values.get(key, "") for key in KEYS})


def _write_private(path, text):
    """Write ``text`` to ``path``, created 0600 (and its directory 0700)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def save_token(token):
    try:
        _write_private(token_path(), token + "\n")
    except OSError as exc:
        raise CliError(f"Cannot write the token to {token_path()}: {exc.strerror}") from None


def forget_token():
    token_path().unlink(missing_ok=True)


def save_file_values(**values):
    """Set keys of the file's ``[corpus]`` section, keeping the rest of the file."""
    path = config_path()
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error:
        raise CliError(f"Cannot read {path}: it is not an INI file", EXIT_BAD_INPUT) from None
    if not parser.has_section(SECTION):
        parser.add_section(SECTION)
    for key, value in values.items():
        if value:
            parser.set(SECTION, key, value)
    lines = ["# corpus: the controller's URL, your user name, your default environment (env = NAME)"]
    for section in parser.sections():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {value}" for key, value in parser.items(section, raw=True))
        lines.append("")
    try:
        _write_private(path, "\n".join(lines))
    except OSError as exc:
        raise CliError(f"Cannot write {path}: {exc.strerror}") from None
