"""What ``corpus run TARGET`` and ``corpus playbook TARGET`` name: a group, a label
(``key=value``) or a region, resolved to the hosts of one tenant through the
inventory's search.

A target is read as:

- ``group:NAME``, ``region:NAME``, ``cell:NAME``, ``label:LABEL``, ``host:NAME``: that kind, said;
- ``key=value`` (any text with ``=``): a label;
- a bare ``NAME``: the group of that name, else the region; a name that is both is
  refused (say ``group:`` or ``region:``), as one that is neither.

A group takes the hosts of the groups inside it, as a search does.
"""

import re

from sqlalchemy import select

from mc_project.errors import CorpusError
from mc_project.inventory.fleet_rules import NotFound
from mc_project.inventory import host_rows, search
from mc_project.inventory.fleet_models import Cell, HostGroup
from mc_project.inventory.models import Region

KINDS = ("group", "region", "cell", "label", "host")
TARGET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/=-]{0,254}$")


def parse(target):
    """``(kind, name)`` of ``target``; a bare name's kind is None (decided against the inventory)."""
    text = str(target or "").strip()
    if not TARGET_RE.fullmatch(text):
        raise CorpusError("Target {!r} is not valid: name a group, a region or a label (key=value), "
                          "or say group:NAME, region:NAME, cell:NAME, label:LABEL or host:NAME.".format(target))
    kind, sep, name = text.partition(":")
    if sep and kind in KINDS:
        if not name:
            raise CorpusError("Target {!r} names no {}.".format(text, kind))
        return kind, name
    if "=" in text:
        return "label", text
    return None, text


def _exists(sess, tenant_id, kind, name):
    if kind == "group":
        query = select(HostGroup.id).where(HostGroup.tenant_id == tenant_id, HostGroup.name == name)
    elif kind == "region":
        query = select(Region.id).where(Region.tenant_id == tenant_id, Region.name == name)
    else:  # cell
        query = select(Cell.id).join(Region, Region.id == Cell.region_id).where(
            Region.tenant_id == tenant_id, Cell.name == name)
    return sess.scalar(query.limit(1)) is not None


def kind_of(sess, tenant_id, target):
    """``(kind, name)`` of ``target`` in tenant ``tenant_id``; an unknown group, region or cell is refused."""
    kind, name = parse(target)
    if kind is None:
        found = [each for each in ("group", "region") if _exists(sess, tenant_id, each, name)]
        if len(found) > 1:
            raise CorpusError("{} is both a group and a region: say group:{} or region:{}.".format(name, name, name))
        if not found:
            raise NotFound("No group or region named {}; a label is key=value.".format(name))
        kind = found[0]
    elif kind in ("group", "region", "cell") and not _exists(sess, tenant_id, kind, name):
        raise NotFound("No {} named {}.".format(kind, name))
    return kind, name


def hosts(sess, tenant_id, target):
    """The hosts ``target`` names in tenant ``tenant_id`` (``host_rows`` mappings, by name);
    a target that names none is refused."""
    kind, name = kind_of(sess, tenant_id, target)
    filters = {"name" if kind == "host" else kind: name}
    found = host_rows.rows(sess, *search.sql_filters(sess, tenant_id, **filters))
    if not found:
        raise CorpusError("Target {} matches no host.".format(target))
    return found
