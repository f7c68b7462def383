"""The checks of a request to the controller, made before any job exists.

A bad request is refused in one sentence and changes nothing. The rules
themselves (names, paths) are the shared vocabulary's.
"""

import ipaddress
import re

from mc_project.common.vocabulary import BRIDGE_RE, NFT_TABLE_RE, NODE_NAME_RE, PATH_RE
from mc_project.errors import CorpusError

# A mail address corpus will write to: a plain local part and a dotted domain, nothing a
# mail header or a shell could read as more.
MAIL_RE = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+")
DISK_MIN_MB = 512
DISK_MAX_MB = 1024 * 1024  # 1 TiB


def check_disk_size(size):
    """A container's disk size in MiB, within bounds, or one sentence."""
    if isinstance(size, bool) or not isinstance(size, int) or not DISK_MIN_MB <= size <= DISK_MAX_MB:
        raise CorpusError("Disk size must be a whole number of MiB from {} to {}, not {!r}.".format(
            DISK_MIN_MB, DISK_MAX_MB, size))
    return size


def check_disk_size_given(value):
    """A disk size as a caller gives it (an int, or digits from a command line) in MiB, or one
    sentence: a size that is not a whole number never reaches ``int()``'s traceback."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return check_disk_size(value)


def check_requester(requester):
    if requester is not None and not MAIL_RE.fullmatch(str(requester)):
        raise CorpusError("Requester {!r} is not an e-mail address (user@domain.tld).".format(requester))
    return requester


def check_int(value, what, low, high):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise CorpusError("{} must be a whole number, not {!r}.".format(what, value)) from None
    if not low <= number <= high:
        raise CorpusError("{} must be between {} and {}, not {}.".format(what, low, high, number))
    return number


def check_port_range(value):
    low, _, high = str(value).partition("-")
    try:
        low, high = int(low), int(high)
    except ValueError:
        raise CorpusError("NAT ports are a range MIN-MAX, not {!r}.".format(value)) from None
    if not 1024 <= low <= high <= 65535:
        raise CorpusError("NAT ports {!r} must be a range within 1024-65535.".format(value))
    return [low, high]


def check_path(value, what):
    if not isinstance(value, str) or not PATH_RE.match(value) or "/../" in value + "/" or value == "/":
        raise CorpusError("{} must be an absolute path of plain characters, not {!r}.".format(what, value))
    return value.rstrip("/")


def check_node_name(value, what="A node name"):
    if not isinstance(value, str) or not NODE_NAME_RE.match(value):
        raise CorpusError("{} is letters, digits, '.', '_' and '-' (64 at most), not {!r}.".format(
            what, value))
    return value


def check_subnet(value):
    try:
        subnet = ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        raise CorpusError("{!r} is not a subnet in CIDR notation (e.g. 10.20.0.0/24).".format(
            value)) from None
    if subnet.version != 4 or not 8 <= subnet.prefixlen <= 29:
        raise CorpusError("A node's subnet is an IPv4 network from /8 to /29, not {}.".format(subnet))
    return subnet


def is_address(host):
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def check_link_request(host, user, name, bridge, nft_table):
    """Refuse a bad host, SSH user, node name, bridge or nftables table name in one sentence
    (no table name: the node's own, named after it)."""
    if not isinstance(host, str) or not host.strip() or any(char.isspace() for char in host):
        raise CorpusError("A node's host is an address or a DNS name, not {!r}.".format(host))
    if name is not None:
        check_node_name(name)
    if not isinstance(user, str) or not NODE_NAME_RE.match(user):
        raise CorpusError("{!r} is not an SSH user name.".format(user))
    if not BRIDGE_RE.match(str(bridge)):
        raise CorpusError("A bridge name is 1 to 15 letters, digits, '.', '_' or '-', not {!r}.".format(
            bridge))
    if nft_table is not None and (not isinstance(nft_table, str) or not NFT_TABLE_RE.match(nft_table)):
        raise CorpusError("An nftables table name is a letter then letters, digits or '_', not {!r}.".format(
            nft_table))
