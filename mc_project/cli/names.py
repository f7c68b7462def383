"""Names checked before they go into a URL: the shared vocabulary's rules, so a bad one is
exit 2 in one sentence and never reaches another path of the API."""

import re

from mc_project.common.vocabulary import ENV_NAME_RE, PROJECT_NAME_RE

from .errors import EXIT_BAD_INPUT, CliError

JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
RELEASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def env_name(name):
    if not ENV_NAME_RE.match(name or ""):
        raise CliError(f"Bad environment name {name!r}: lower-case letters, digits and '-', at most 40, "
                       "as a DNS label", EXIT_BAD_INPUT)
    return name


def project_name(name):
    if not PROJECT_NAME_RE.match(name or ""):
        raise CliError(f"Bad project name {name!r}: letters, digits, '_', '.' and '-', at most 64, "
                       "starting with a letter or digit", EXIT_BAD_INPUT)
    return name


def job_id(value):
    if not JOB_ID_RE.match(str(value or "")):
        raise CliError(f"Bad job id {value!r}", EXIT_BAD_INPUT)
    return value


def release_id(value):
    if not RELEASE_RE.match(str(value or "")):
        raise CliError(f"Bad release id {value!r}", EXIT_BAD_INPUT)
    return value
