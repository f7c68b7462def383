"""A site's blueprint: the YAML (or JSON) file saying what a site is made of.

::

    site: shop
    environments:
      - name: shop-web
        type: staging          # dev, staging or prod; a change replaces the environment (-/+)
        node: node*            # a node's name or a shell pattern; a change that no longer
                               # matches the node it lives on replaces it (-/+)
        size: 2G               # its disk (MiB, or 512M, 2G...); a change resizes it (~)
        image: default         # the golden image it is cloned from; a change replaces it (-/+)
        projects:              # the first one is the environment's own project
          - name: shop
            git: https://git.example.org/shop.git
            pillar: {workers: 2}
    domains:
      - name: shop.example.org
        nameservers: [ns1.example.org]
        records:
          - {name: www, type: CNAME, content: shop-web.corpus.test.}
    checks:
      - {name: shop-http, kind: http, host: shop-web, params: {url: "http://shop-web/"}}

``parse(text)`` gives the checked ``Blueprint`` or raises ``BlueprintError``: one
sentence per mistake, each naming where in the file it is (``environments[1].type``).
"""

import fnmatch
import hashlib
import json
import re

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mc_project.common.vocabulary import ENV_NAME_RE, ENV_TYPES, NODE_NAME_RE, PROJECT_NAME_RE
from mc_project.errors import CorpusError
from mc_project.inventory import dns_rules

SITE_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
NODE_PATTERN_RE = re.compile(r"^[A-Za-z0-9*?\[\]._-]{1,63}$")
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([MGT]?)(?:I?B)?\s*$", re.I)
SIZE_UNITS = {"": 1, "M": 1, "G": 1024, "T": 1024 * 1024}
CHECK_KINDS = ("http", "tcp", "script", "ttl")
MAX_BLUEPRINT = 4 * 1024 * 1024
# libyaml's loader reads a 100-environment blueprint ten times faster than the pure-Python one.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class BlueprintError(CorpusError):
    """A blueprint with mistakes: ``mistakes`` holds one sentence for each."""

    def __init__(self, mistakes):
        self.mistakes = list(mistakes)
        super().__init__(" ".join(self.mistakes))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def size_mb(value):
    """A disk size in MiB from an int or ``512M``/``2G``/``1.5G``."""
    if isinstance(value, bool):
        raise ValueError("a size is a number of MiB or a text such as 512M or 2G")
    if isinstance(value, int):
        mib = value
    else:
        match = SIZE_RE.match(str(value))
        if not match:
            raise ValueError("{!r} is not a size: give MiB, or 512M, 2G, 1.5G".format(value))
        mib = float(match.group(1)) * SIZE_UNITS[match.group(2).upper()]
        if mib != int(mib):
            raise ValueError("{!r} is not a whole number of MiB".format(value))
        mib = int(mib)
    if not 64 <= mib <= 2 ** 31:
        raise ValueError("a disk of {} MiB is outside 64 MiB to 2 TiB".format(mib))
    return mib


class ProjectSpec(_Strict):
    name: str
    git: str | None = Field(None, max_length=2048)
    pillar: dict = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value):
        if not PROJECT_NAME_RE.fullmatch(value):
            raise ValueError("{!r} is not a project name (letters, digits, '.', '_' and '-')".format(value))
        return value

    @field_validator("pillar")
    @classmethod
    def _pillar(cls, value):
        reserved = {"env", "bind", "port"} & set(value)
        if reserved:
            raise ValueError("the controller sets {} itself".format(", ".join(sorted(reserved))))
        json.dumps(value)
        return value


class EnvironmentSpec(_Strict):
    name: str
    type: str = "dev"
    node: str | None = None
    size: int | None = None
    image: str | None = Field(None, min_length=1, max_length=255)
    projects: list[ProjectSpec] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value):
        if not ENV_NAME_RE.fullmatch(value):
            raise ValueError("{!r} is not an environment name: 1 to 40 lower-case letters, digits and inner "
                             "dashes".format(value))
        return value

    @field_validator("type")
    @classmethod
    def _type(cls, value):
        if value not in ENV_TYPES:
            raise ValueError("{!r} is not one of {}".format(value, ", ".join(ENV_TYPES)))
        return value

    @field_validator("node")
    @classmethod
    def _node(cls, value):
        if value is not None and not NODE_PATTERN_RE.fullmatch(value):
            raise ValueError("{!r} is neither a node name nor a pattern such as node*".format(value))
        return value

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, value):
        return None if value is None else size_mb(value)

    @model_validator(mode="after")
    def _unique_projects(self):
        names = [project.name for project in self.projects]
        for name in names:
            if names.count(name) > 1:
                raise ValueError("project {} is listed twice".format(name))
        return self

    @property
    def project_names(self):
        return [project.name for project in self.projects] or [self.name]

    def node_matches(self, node):
        return self.node is None or fnmatch.fnmatchcase(node or "", self.node)

    @property
    def node_is_pattern(self):
        return self.node is not None and not NODE_NAME_RE.fullmatch(self.node)


class RecordSpec(_Strict):
    name: str = "@"
    type: str
    content: str
    ttl: int | None = None


class DomainSpec(_Strict):
    name: str
    nameservers: list[str]
    records: list[RecordSpec] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, data):
        if not isinstance(data, dict):
            return data
        data = dict(data)
        try:
            data["name"] = dns_rules.domain_name(data.get("name"))
            data["nameservers"] = dns_rules.nameservers(data.get("nameservers"))
        except CorpusError as exc:
            raise ValueError(str(exc).rstrip(".")) from None
        records = []
        for index, record in enumerate(data.get("records") or []):
            if not isinstance(record, dict):
                records.append(record)
                continue
            record = dict(record)
            try:
                record["name"] = _absolute(record.get("name", "@"), data["name"])
                record["type"] = dns_rules.record_type(record.get("type"))
                record["content"] = dns_rules.content(record["type"], record.get("content"))
                record["ttl"] = dns_rules.ttl(record.get("ttl"))
            except CorpusError as exc:
                raise ValueError("records[{}]: {}".format(index, str(exc).rstrip("."))) from None
            records.append(record)
        data["records"] = records
        return data

    def record_rows(self):
        """The records as the inventory keeps them: sorted ``[name, type, content, ttl]``."""
        return sorted([record.name, record.type, record.content, record.ttl] for record in self.records)


class CheckSpec(_Strict):
    name: str = Field(min_length=1, max_length=128)
    kind: str
    host: str
    params: dict = Field(default_factory=dict)
    interval: int = Field(60, ge=1, le=86400)
    timeout: int = Field(10, ge=1, le=3600)
    retries: int = Field(0, ge=0, le=100)

    @field_validator("kind")
    @classmethod
    def _kind(cls, value):
        if value not in CHECK_KINDS:
            raise ValueError("{!r} is not one of {}".format(value, ", ".join(CHECK_KINDS)))
        return value


class Blueprint(_Strict):
    site: str
    tenant: str | None = Field(None, min_length=1, max_length=128)
    environments: list[EnvironmentSpec] = Field(default_factory=list)
    domains: list[DomainSpec] = Field(default_factory=list)
    checks: list[CheckSpec] = Field(default_factory=list)

    @field_validator("site")
    @classmethod
    def _site(cls, value):
        if not SITE_NAME_RE.fullmatch(value):
            raise ValueError("{!r} is not a site name: lower-case letters, digits and inner dashes".format(value))
        return value

    def canonical(self):
        """The blueprint as plain JSON data, sorted, defaults filled in: what is hashed and stored."""
        data = self.model_dump(mode="json")
        for key, field in (("environments", "name"), ("domains", "name"), ("checks", "name")):
            data[key] = sorted(data[key], key=lambda item: item[field])
        for domain in data["domains"]:
            domain["records"] = sorted(domain["records"], key=lambda r: (r["name"], r["type"], r["content"]))
        return data

    def digest(self):
        return hashlib.sha256(json.dumps(self.canonical(), sort_keys=True).encode()).hexdigest()


def _absolute(name, domain):
    """A record's name: ``@``, a name relative to the domain (``www``) or a full one."""
    text = str(name).strip() if name is not None else "@"
    if text not in ("@", "") and not text.endswith(".") and not (text == domain or text.endswith("." + domain)):
        text = "{}.{}".format(text, domain)
    return dns_rules.record_name(text or "@", domain)


def _where(loc):
    parts = []
    for item in loc:
        if isinstance(item, int):
            parts.append("[{}]".format(item))
        elif item in ("function-after[_unique_projects()]",) or str(item).startswith(("function-", "model-")):
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "the blueprint"


def _sentence(error):
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    if error["type"] == "extra_forbidden":
        message = "is not a known key"
    elif error["type"] == "missing":
        message = "is missing"
    where = _where(error["loc"])
    # A domain's own check names the record it found wrong: ``records[2]: ...``.
    text = "{}.{}".format(where, message) if message.startswith("records[") else "{}: {}".format(where, message)
    return text if text.endswith((".", "?", "!")) else text + "."


def _duplicates(blueprint):
    mistakes = []
    for key, items in (("environments", blueprint.environments), ("domains", blueprint.domains),
                       ("checks", blueprint.checks)):
        seen = {}
        for index, item in enumerate(items):
            if item.name in seen:
                mistakes.append("{}[{}].name: {} is also {}[{}].".format(key, index, item.name, key, seen[item.name]))
            seen.setdefault(item.name, index)
    envs = {env.name for env in blueprint.environments}
    for index, check in enumerate(blueprint.checks):
        if check.host not in envs:
            mistakes.append("checks[{}].host: {} is not an environment of this site.".format(index, check.host))
    return mistakes


def load(text):
    """The blueprint mapping in YAML or JSON ``text`` (JSON is YAML), or one sentence."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if len(text) > MAX_BLUEPRINT:
        raise BlueprintError(["The blueprint is larger than {} bytes.".format(MAX_BLUEPRINT)])
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " at line {}".format(mark.line + 1) if mark is not None else ""
        raise BlueprintError(["The blueprint is not valid YAML{}: {}.".format(
            where, getattr(exc, "problem", None) or "unreadable")]) from None
    return data


def parse(data):
    """The checked ``Blueprint`` of a mapping (or of YAML/JSON text)."""
    if isinstance(data, (str, bytes)):
        data = load(data)
    if not isinstance(data, dict):
        raise BlueprintError(["The blueprint is a mapping with site, environments, domains and checks."])
    try:
        blueprint = Blueprint.model_validate(data)
    except ValidationError as exc:
        raise BlueprintError([_sentence(error) for error in exc.errors()]) from None
    mistakes = _duplicates(blueprint)
    if mistakes:
        raise BlueprintError(mistakes)
    return blueprint


def empty(site, tenant=None):
    """The blueprint of a site with nothing in it: its plan destroys what the site owns."""
    return Blueprint(site=site, tenant=tenant)
