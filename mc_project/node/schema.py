"""The schema of a compute node's options: how it is linked and what its minion uses.

``LinkNodeOptions`` lists the options of ``salt-run mc_cloud.link_node`` (the same
rules ``mc_project.controller.operations.link_node`` applies when it runs);
``NodeMinionOptions`` the minion options ``mc_lxc:*`` that linking writes into the
node's minion configuration and that ``mc_lxc`` falls back on. Each field's
docstring is its documentation. ``validate`` checks a mapping and raises one
``CorpusError`` sentence for the first bad value.
"""

import ipaddress
import re
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from mc_project.common.vocabulary import BRIDGE_RE, LXC_PATH, NFT_TABLE_RE, NODE_PREFIX, PATH_RE
from mc_project.common.vocabulary import NODE_NAME_RE as NAME_RE
from mc_project.errors import CorpusError
from mc_project.project.schema import check

PORT_RANGE_RE = re.compile(r"^(\d+)-(\d+)$")


def _is_host(text):
    return bool(text.strip()) and not any(char.isspace() for char in text)


def _is_path(text):
    return bool(PATH_RE.match(text)) and "/../" not in text + "/" and text != "/"


def _is_subnet(text):
    try:
        subnet = ipaddress.ip_network(text, strict=True)
    except ValueError:
        return False
    return subnet.version == 4 and 8 <= subnet.prefixlen <= 29


def _is_port_range(text):
    match = PORT_RANGE_RE.match(text)
    return bool(match) and 1024 <= int(match.group(1)) <= int(match.group(2)) <= 65535


def _rule(allowed, default=None):
    return Field(default, json_schema_extra={"allowed": allowed})


Host = Annotated[str, check(_is_host)]
Name = Annotated[str, check(NAME_RE.match)]
Path = Annotated[str, check(_is_path)]
Subnet = Annotated[str, check(_is_subnet)]
PortRange = Annotated[str, check(_is_port_range)]
Bridge = Annotated[str, check(BRIDGE_RE.match)]
NftTable = Annotated[str, check(NFT_TABLE_RE.match)]

PATH = "an absolute path of plain characters"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", use_attribute_docstrings=True)


class LinkNodeOptions(_Strict):
    """The options of ``salt-run mc_cloud.link_node``: one compute node."""

    host: Host = Field(json_schema_extra={"allowed": "an address or a DNS name without spaces"})
    """Address or DNS name the controller reaches the node at over SSH."""

    user: Name = _rule("an SSH user name (letters, digits, '.', '_' and '-')", "root")
    """SSH user that installs corpus on the node (root, or one with sudo)."""

    key: StrictStr | None = _rule("a path to an SSH private key, or empty", None)
    """SSH private key on the controller; empty: the SSH agent and default keys."""

    port: StrictInt = Field(22, ge=1, le=65535,
                            json_schema_extra={"allowed": "a port from 1 to 65535"})
    """SSH port of the node."""

    name: Name | None = _rule("a node name (letters, digits, '.', '_' and '-', 63 at most)", None)
    """Name of the node in the inventory; empty: its host."""

    slots: StrictInt = Field(10, ge=0, le=100000,
                             json_schema_extra={"allowed": "a whole number from 0 to 100000"})
    """How many environments (containers) the node may hold."""

    subnet: Subnet | None = _rule("an IPv4 network from /8 to /29 such as 10.20.0.0/24, or empty",
                                  None)
    """Network of the node's containers (on its bridge); empty: one the controller picks."""

    http_port: StrictInt = Field(80, ge=1, le=65535,
                                 json_schema_extra={"allowed": "a port from 1 to 65535"})
    """Port of the node's HTTP proxy, which routes each environment's domain to its container."""

    prefix: Path = _rule(PATH, NODE_PREFIX)
    """Where corpus lives on the node: its venv, wheelhouse, minion configuration and state."""

    lxc_path: Path = _rule(PATH, LXC_PATH)
    """Where the node keeps its LXC containers."""

    dns_name: StrictStr | None = _rule("a DNS name, or empty", None)
    """DNS name of the node; empty: its host when that is a name, else none."""

    bridge: Bridge = _rule("a bridge name of 1 to 15 letters, digits, '.', '_' or '-'",
                           "corpusbr0")
    """Network bridge the node's containers are plugged into."""

    nft_table: NftTable | None = _rule("an nftables table name (a letter, then letters, digits or '_'), "
                                       "or empty", None)
    """nftables tables (``ip`` and ``bridge``) holding the node's NAT and firewall; empty: its own,
    ``corpus_<name>_<hash>``."""

    nat_ports: PortRange = _rule("a port range MIN-MAX within 1024-65535", "40000-40999")
    """Node ports NATed to the containers' SSH, one per container."""


class NodeMinionOptions(_Strict):
    """The minion options ``mc_lxc:*`` of a compute node (written by ``link_node``)."""

    lxc_path: Path = _rule(PATH, LXC_PATH)
    """Where the node keeps its LXC containers (``link_node``'s ``lxc_path``)."""

    state_dir: Path = _rule(PATH, "/var/lib/corpus/node")
    """Where the proxy's routes and the saved port mappings live; ``link_node`` sets
    ``<prefix>/var/lib/node``."""

    nft_table: NftTable = _rule("an nftables table name (a letter, then letters, digits or '_')",
                                "corpus")
    """nftables table holding the node's NAT rules (``link_node``'s ``nft_table``)."""


def validate(mapping, model, what):
    """Check ``mapping`` against ``model``; ``what`` names it ("Node option").

    Returns ``mapping``; raises ``CorpusError`` naming the first bad key.
    """
    if not isinstance(mapping, dict):
        raise CorpusError(f"{what}s must be a mapping, not {mapping!r}.")
    try:
        model.model_validate(mapping)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = error["loc"][0]
        field = model.model_fields.get(key)
        if field is None:
            known = ", ".join(model.model_fields)
            raise CorpusError(f"{what} {key} is unknown; known options are {known}.") from None
        allowed = field.json_schema_extra["allowed"]
        if error["type"] == "missing":
            raise CorpusError(f"{what} {key} is required: {allowed}.") from None
        raise CorpusError(f"{what} {key} must be {allowed}, not {error.get('input')!r}.") from None
    return mapping
