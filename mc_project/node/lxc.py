"""LXC containers of a compute node, over the ``lxc-*`` tools.

Every container has a fixed-size root filesystem: an ext4 image ``<lxc_path>/<name>/rootdev``
(LXC's ``loop`` backing store), so its disk can be enlarged and trimmed for real. The node keeps
a golden container ``corpus-golden`` built once from the Debian template; a new container is a
sparse copy of its image plus a configuration written here (not the template's), which takes a
second or two instead of a minute for a template create.

The golden image is built in ``images.py``; commands inside a container are ``inside.py``'s.
Names are LXC names: lower-case letters, digits and dashes.
"""

import contextlib
import hashlib
import ipaddress
import os
import re
import shutil
import socket
import stat
import struct
import time

from mc_project.common.vocabulary import LXC_PATH
from mc_project.errors import CorpusError
from mc_project.node import firewall, images
from mc_project.node.images import DEFAULT_DISK_SIZE_MB, DEFAULT_MIRROR, DEFAULT_SUITE
from mc_project.node.shell import file_lock, last_line, run

GOLDEN_NAME = "corpus-golden"
# The next environments' containers, made ahead (spares.py): corpus-spare, corpus-spare-2...
SPARE_NAME = "corpus-spare"
SPARE_RE = re.compile(r"^{}(-[0-9]+)?$".format(SPARE_NAME))
COMMON_CONF = "/usr/share/lxc/config/debian.common.conf"

# Trimming must leave this much free space above what the filesystem already uses.
TRIM_MARGIN_MB = 128
SSH_PORT = 22

# Containers are unprivileged: each one's ids 0..65535 are the node's BASE..BASE+65535, BASE
# its own (``allocate_id_base``), from a pool root reserves in /etc/subuid and /etc/subgid
# (LXC insists on it where newuidmap is installed). The pool ends below 2**31.
ID_RANGE = 65536
ID_POOL_START = 1 << 30
ID_POOL_SLOTS = 16384
SUBORDINATE_ID_FILES = ("/etc/subuid", "/etc/subgid")
# Beside a container's config, included by it: its id map, dropped capabilities and mounts.
UNPRIVILEGED_CONF = "unprivileged.conf"
USERNS_CONF = "/usr/share/lxc/config/debian.userns.conf"
# Capabilities no container gets. Besides the kernel-wide ones (modules, raw I/O, the clock,
# the kernel log, MAC policy, audit, BPF, perf events, accounting, wake alarms) sys_admin
# goes too: root in the container cannot mount anything (a tmpfs or a FUSE filesystem), so
# systemd runs services without mount namespaces of their own (it does so in containers).
DROPPED_CAPS = (
    "audit_control", "audit_read", "block_suspend", "bpf", "mac_admin", "mac_override", "perfmon",
    "sys_admin", "sys_module", "sys_pacct", "sys_rawio", "sys_time", "syslog", "wake_alarm",
)
# Without sys_admin systemd cannot mount /run, /run/lock and /dev/shm: LXC mounts them first.
UNPRIVILEGED_MOUNTS = (
    "tmpfs run tmpfs rw,nosuid,nodev,mode=755,create=dir 0 0",
    "tmpfs run/lock tmpfs rw,nosuid,nodev,noexec,size=5120k,create=dir 0 0",
    "tmpfs dev/shm tmpfs rw,nosuid,nodev,mode=1777,create=dir 0 0",
)
# Debian's haproxy.service binds /dev/log into haproxy's chroot, which needs a mount namespace
# systemd then insists on; corpus's fronts run their own haproxy, this one only must not fail.
CONTAINER_DROP_INS = {
    "etc/systemd/system/haproxy.service.d/corpus-unprivileged.conf": "[Service]\nBindReadOnlyPaths=\n",
}
ACL_XATTRS = ("system.posix_acl_access", "system.posix_acl_default")
CAPABILITY_XATTR = "security.capability"

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)




# --------------------------------------------------------------------------- names and paths


def validate_name(name):
    """Refuse anything that is not a plain LXC container name."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise CorpusError(
            "{!r} is not a container name (lower-case letters, digits and dashes).".format(name)
        )
    return name


def container_dir(name, lxc_path=LXC_PATH):
    return os.path.join(lxc_path, validate_name(name))


def rootdev_path(name, lxc_path=LXC_PATH):
    return os.path.join(container_dir(name, lxc_path), "rootdev")


def exists(name, lxc_path=LXC_PATH):
    return os.path.isfile(os.path.join(container_dir(name, lxc_path), "config"))


def require(name, lxc_path):
    if not exists(name, lxc_path):
        raise CorpusError("There is no container {} in {}.".format(name, lxc_path))




# --------------------------------------------------------------------------- configuration text


def render_config(name, rootdev, hostname=None, network=None, autostart=True):
    """The LXC configuration corpus writes for a container.

    ``network`` is ``{"bridge", "address" (CIDR), "gateway", "hwaddr", "port"}``, or None for a
    container with no network (the golden one). ``port`` names the host side of its veth, which
    the node's firewall pins to its MAC and address (``firewall.port_name``).
    """
    lines = [
        "# Written by corpus for container {}.".format(name),
        "lxc.include = {}".format(COMMON_CONF),
        "lxc.tty.max = 4",
        "lxc.pty.max = 1024",
        "lxc.rootfs.path = loop:{}".format(rootdev),
        "lxc.uts.name = {}".format(hostname or name),
        "lxc.start.auto = {}".format(1 if autostart else 0),
    ]
    # An unprivileged container (every one but the golden) has its id map beside its config.
    unprivileged = os.path.join(os.path.dirname(rootdev), UNPRIVILEGED_CONF)
    if os.path.isfile(unprivileged):
        lines.append("lxc.include = {}".format(unprivileged))
    if network:
        lines += [
            "lxc.net.0.type = veth",
            "lxc.net.0.link = {}".format(network["bridge"]),
            "lxc.net.0.flags = up",
        ]
        if network.get("port"):
            lines.append("lxc.net.0.veth.pair = {}".format(network["port"]))
        lines += [
            "lxc.net.0.hwaddr = {}".format(network["hwaddr"]),
            "lxc.net.0.ipv4.address = {}".format(network["address"]),
            "lxc.net.0.ipv4.gateway = {}".format(network["gateway"]),
        ]
    else:
        lines.append("lxc.net.0.type = empty")
    return "\n".join(lines) + "\n"


def write_config(name, lxc_path=LXC_PATH, autostart=True):
    """The configuration of a container as cloned: no network until ``configure``."""
    with open(os.path.join(container_dir(name, lxc_path), "config"), "w", encoding="utf-8") as fh:
        fh.write(render_config(name, rootdev_path(name, lxc_path), autostart=autostart))


def read_config(name, lxc_path=LXC_PATH):
    """``{key: value}`` of a container's LXC configuration (the last value of a repeated key)."""
    values = {}
    with open(os.path.join(container_dir(name, lxc_path), "config"), encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    return values


def interfaces_text(address, gateway):
    """The container's /etc/network/interfaces.

    LXC already sets the address and route before init runs, and ifupdown's ``static``
    method fails on an address already present (networking.service then fails and the boot
    is "degraded"); ``manual`` with ``replace`` keeps the address in the container's own
    configuration and survives a restart of networking.
    """
    return (
        "auto lo\niface lo inet loopback\n\n"
        "auto eth0\niface eth0 inet manual\n"
        "    up ip addr replace {address} dev eth0\n"
        "    up ip route replace default via {gateway} dev eth0\n"
    ).format(address=address, gateway=gateway)


def hosts_text(hostname):
    short = hostname.split(".", 1)[0]
    names = hostname if short == hostname else "{} {}".format(hostname, short)
    return (
        "127.0.0.1\tlocalhost\n127.0.1.1\t{}\n\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
    ).format(names)


def derived_hwaddr(name, lxc_path):
    """A MAC of the container's own, derived from its name: the same on every rerun, and none
    another container of ``lxc_path`` has. 00:16:3e is the range LXC itself uses."""
    taken = set()
    for other in os.listdir(lxc_path) if os.path.isdir(lxc_path) else ():
        if other != name and NAME_RE.match(other) and exists(other, lxc_path):
            taken.add(read_config(other, lxc_path).get("lxc.net.0.hwaddr", "").lower())
    for attempt in range(1 << 16):
        digest = hashlib.sha256("{}/{}/{}".format(lxc_path.rstrip("/"), name, attempt).encode()).digest()
        hwaddr = "00:16:3e:{:02x}:{:02x}:{:02x}".format(*digest[:3])
        if hwaddr not in taken:
            return hwaddr
    raise CorpusError("No free MAC address is left for container {}.".format(name))


def parse_network(address, gateway=None):
    """``(interface, gateway)`` from a CIDR address; the gateway defaults to the subnet's first host."""
    try:
        interface = ipaddress.IPv4Interface(address)
    except ValueError:
        raise CorpusError(
            "{!r} is not an IPv4 address with its prefix (like 10.77.0.10/24).".format(address)
        ) from None
    if interface.network.prefixlen == 32 or interface.ip in (
        interface.network.network_address,
        interface.network.broadcast_address,
    ):
        raise CorpusError("{} is not a host address of its subnet.".format(address))
    if gateway in (None, ""):
        gateway = str(next(interface.network.hosts()))
    try:
        gateway_ip = ipaddress.IPv4Address(gateway)
    except ValueError:
        raise CorpusError("{!r} is not an IPv4 gateway address.".format(gateway)) from None
    if gateway_ip not in interface.network or gateway_ip == interface.ip:
        raise CorpusError("Gateway {} is not another host of {}.".format(gateway, interface.network))
    return interface, str(gateway_ip)




def golden(
    lxc_path=LXC_PATH, mirror=DEFAULT_MIRROR, suite=DEFAULT_SUITE, disk_size_mb=DEFAULT_DISK_SIZE_MB,
    wheelhouse=None,
):
    """Make sure ``lxc_path`` has the golden container; copy it from the machine's cache
    (building that first if needed). Returns ``{name, built, seconds, venv}``.

    With ``wheelhouse`` (the node's), the golden image also carries the container minion's
    venv installed from it: when the wheelhouse's stamp is not the one the image was baked
    with, the venv is made again once here, for every container cloned after. ``venv`` says
    ``current``, ``baked`` or why it could not be baked (containers then install it with pip).
    """
    started = time.monotonic()
    rootdev = rootdev_path(GOLDEN_NAME, lxc_path)
    result = {"name": GOLDEN_NAME, "built": False}
    with file_lock(os.path.join(lxc_path, ".corpus-golden.lock")):
        if not os.path.isfile(rootdev):
            cached = images.build_golden_image(mirror, suite, disk_size_mb)
            directory = container_dir(GOLDEN_NAME, lxc_path)
            os.makedirs(os.path.join(directory, "rootfs"), exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(golden_stamp_path(lxc_path))
            with open(os.path.join(directory, "config"), "w", encoding="utf-8") as fh:
                fh.write(render_config(GOLDEN_NAME, rootdev, autostart=False))
            images.copy_sparse(cached["image"], rootdev + ".part")
            if images.image_size_mb(rootdev + ".part") != disk_size_mb:
                images.resize_image(rootdev + ".part", disk_size_mb)
            # The image appears last and whole: clone() only ever sees a complete golden.
            os.replace(rootdev + ".part", rootdev)
            result.update(built=True, image_built=cached["built"])
        if wheelhouse:
            result["venv"] = _refresh_golden_venv(lxc_path, wheelhouse)
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def golden_stamp_path(lxc_path=LXC_PATH):
    """Beside the golden image: the stamp of the wheelhouse its minion venv comes from."""
    return os.path.join(container_dir(GOLDEN_NAME, lxc_path), "wheelhouse-stamp")


def golden_stamp(lxc_path=LXC_PATH):
    try:
        with open(golden_stamp_path(lxc_path), encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _refresh_golden_venv(lxc_path, wheelhouse):
    """Bake the minion venv into the golden image when its stamp is not ``wheelhouse``'s (the
    golden lock held). Baked in a copy that then replaces the image, so a clone reading the
    image meanwhile copies the old one whole."""
    try:
        stamp = images.wheelhouse_stamp(wheelhouse)
    except (OSError, CorpusError) as exc:
        return "not baked: {}".format(exc)
    if golden_stamp(lxc_path) == stamp:
        return "current"
    rootdev = rootdev_path(GOLDEN_NAME, lxc_path)
    try:
        images.copy_sparse(rootdev, rootdev + ".part")
        with images.mounted_image(rootdev + ".part") as rootfs:
            images.bake_minion_venv(rootfs, wheelhouse, stamp)
        os.replace(rootdev + ".part", rootdev)
    except (OSError, CorpusError) as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(rootdev + ".part")
        return "not baked: {}".format(exc)
    with open(golden_stamp_path(lxc_path) + ".part", "w", encoding="utf-8") as fh:
        fh.write(stamp + "\n")
    os.replace(golden_stamp_path(lxc_path) + ".part", golden_stamp_path(lxc_path))
    return "baked"


# --------------------------------------------------------------------------- unprivileged containers


def unprivileged_conf_path(name, lxc_path=LXC_PATH):
    return os.path.join(container_dir(name, lxc_path), UNPRIVILEGED_CONF)


def unprivileged_text(base):
    """The LXC configuration (included by the container's) that makes it unprivileged."""
    lines = [
        "# Written by corpus: container ids 0-{} are the node's ids {}-{}.".format(
            ID_RANGE - 1, base, base + ID_RANGE - 1
        ),
        "lxc.include = {}".format(USERNS_CONF),
        "lxc.idmap = u 0 {} {}".format(base, ID_RANGE),
        "lxc.idmap = g 0 {} {}".format(base, ID_RANGE),
        "lxc.cap.drop = {}".format(" ".join(DROPPED_CAPS)),
    ]
    lines += ["lxc.mount.entry = {}".format(entry) for entry in UNPRIVILEGED_MOUNTS]
    return "\n".join(lines) + "\n"


def id_base(name, lxc_path=LXC_PATH):
    """The node id that is root in the container (its ``lxc.idmap``), or None when it has none."""
    try:
        with open(unprivileged_conf_path(name, lxc_path), encoding="utf-8") as fh:
            found = re.search(r"^lxc\.idmap\s*=\s*u\s+0\s+(\d+)\s+\d+\s*$", fh.read(), re.M)
    except FileNotFoundError:
        return None
    return int(found.group(1)) if found else None


def allocate_id_base(name, lxc_path=LXC_PATH):
    """The first node id of a container's range: the one it has, else one derived from its name
    (so a container made again gets its range back) that no other container of ``lxc_path`` has."""
    own = id_base(name, lxc_path)
    if own is not None:
        return own
    taken = set()
    for other in os.listdir(lxc_path) if os.path.isdir(lxc_path) else ():
        if other != name and NAME_RE.match(other):
            taken.add(id_base(other, lxc_path))
    digest = hashlib.sha256("{}/{}".format(lxc_path.rstrip("/"), name).encode()).digest()
    first = int.from_bytes(digest[:8], "big")
    for attempt in range(ID_POOL_SLOTS):
        base = ID_POOL_START + (first + attempt) % ID_POOL_SLOTS * ID_RANGE
        if base not in taken:
            return base
    raise CorpusError("No id range is left for container {} in {}.".format(name, lxc_path))


def reserve_id_base(name, lxc_path=LXC_PATH):
    """Allocate a container's id range and record it beside its config (``unprivileged.conf``);
    a container that has one keeps it. Returns its base."""
    with file_lock(os.path.join(lxc_path, ".corpus-ids.lock")):
        base = allocate_id_base(name, lxc_path)
        path = unprivileged_conf_path(name, lxc_path)
        if not os.path.isfile(path):
            with open(path + ".part", "w", encoding="utf-8") as fh:
                fh.write(unprivileged_text(base))
            os.replace(path + ".part", path)
    return base


def subordinate_ids_reserved(text):
    """Whether an /etc/subuid (or subgid) text gives root the whole id pool."""
    end = ID_POOL_START + ID_POOL_SLOTS * ID_RANGE
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[0] in ("root", "0") and fields[1].isdigit() and fields[2].isdigit():
            if int(fields[1]) <= ID_POOL_START and int(fields[1]) + int(fields[2]) >= end:
                return True
    return False


def ensure_subordinate_ids(files=SUBORDINATE_ID_FILES, lock="/run/lock/corpus-subid.lock"):
    """Give root the id pool in /etc/subuid and /etc/subgid (LXC and newuidmap check there).
    Idempotent; returns the files changed. ``lock`` serialises the nodes of one machine."""
    changed = []
    with file_lock(lock):
        for path in files:
            try:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
            except FileNotFoundError:
                text = ""
            if subordinate_ids_reserved(text):
                continue
            if text and not text.endswith("\n"):
                text += "\n"
            with open(path + ".corpus-part", "w", encoding="utf-8") as fh:
                fh.write(text + "root:{}:{}\n".format(ID_POOL_START, ID_POOL_SLOTS * ID_RANGE))
            os.chmod(path + ".corpus-part", 0o644)
            os.replace(path + ".corpus-part", path)
            changed.append(path)
    return changed


def shifted_id(value, base):
    """A container id (0-65535) as the node sees it; one already shifted to ``base`` stays."""
    if value < ID_RANGE:
        return value + base
    if base <= value < base + ID_RANGE:
        return value
    raise CorpusError("Id {} is outside the container's range ({}-{}).".format(value, base, base + ID_RANGE - 1))


def shift_acl(value, base):
    """A POSIX ACL xattr (version, then 8-byte entries: tag, permissions, id) with the ids of its
    named user (2) and group (8) entries shifted."""
    shifted = bytearray(value)
    for offset in range(4, len(value) - 7, 8):
        tag, _, ident = struct.unpack_from("<HHI", value, offset)
        if tag in (2, 8):
            struct.pack_into("<I", shifted, offset + 4, shifted_id(ident, base))
    return bytes(shifted)


def shift_path(path, base, st=None):
    """Move one inode's owner and group into the range starting at ``base``, keeping what chown
    would clear (setuid and setgid bits, file capabilities) and shifting its ACLs. Returns
    whether it changed."""
    st = st or os.lstat(path)
    link = stat.S_ISLNK(st.st_mode)
    uid, gid = shifted_id(st.st_uid, base), shifted_id(st.st_gid, base)
    kept = {}
    if not link:
        for attr in os.listxattr(path, follow_symlinks=False):
            if attr == CAPABILITY_XATTR or attr in ACL_XATTRS:
                kept[attr] = os.getxattr(path, attr, follow_symlinks=False)
    if (uid, gid) == (st.st_uid, st.st_gid) and not any(attr in ACL_XATTRS for attr in kept):
        return False
    os.chown(path, uid, gid, follow_symlinks=False)
    if not link and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
        os.chmod(path, stat.S_IMODE(st.st_mode))
    for attr, value in kept.items():
        os.setxattr(path, attr, shift_acl(value, base) if attr in ACL_XATTRS else value, follow_symlinks=False)
    return True


def shift_tree(root, base):
    """Shift every inode under ``root`` (on its filesystem; hard links once) into the id range
    starting at ``base``. Idempotent: ids already in the range stay. Returns how many changed."""
    device = os.lstat(root).st_dev
    seen = set()
    changed = int(shift_path(root, base))
    for directory, dirs, files in os.walk(root):
        # Never into another filesystem mounted below (there is none in a fresh image).
        dirs[:] = [d for d in dirs if os.lstat(os.path.join(directory, d)).st_dev == device]
        for entry in dirs + files:
            path = os.path.join(directory, entry)
            st = os.lstat(path)
            if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                if st.st_ino in seen:
                    continue
                seen.add(st.st_ino)
            changed += shift_path(path, base, st)
    return changed


def shift_rootfs(rootfs, base):
    """Make a mounted container image its root's: the files every unprivileged container has
    (``CONTAINER_DROP_INS``), then every inode shifted. Returns how many inodes changed."""
    for relative, text in CONTAINER_DROP_INS.items():
        path = os.path.join(rootfs, relative)
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(path, 0o644)
    return shift_tree(rootfs, base)


def make_unprivileged(name, lxc_path=LXC_PATH):
    """Give a stopped container made before containers were unprivileged an id range of its own:
    its files shifted into it and its config including it. Idempotent; returns its base."""
    include = "lxc.include = {}".format(unprivileged_conf_path(name, lxc_path))
    config_path = os.path.join(container_dir(name, lxc_path), "config")
    with open(config_path, encoding="utf-8") as fh:
        text = fh.read()
    if include in text.splitlines():
        return id_base(name, lxc_path)
    base = reserve_id_base(name, lxc_path)
    images.wait_image_released(rootdev_path(name, lxc_path))
    with images.mounted_image(rootdev_path(name, lxc_path)) as rootfs:
        shift_rootfs(rootfs, base)
    with open(config_path, "a", encoding="utf-8") as fh:
        fh.write(("" if text.endswith("\n") else "\n") + include + "\n")
    return base


def chroot_argv(rootfs, base):
    """The command that runs what follows in a mounted container image as the container's root:
    in its id range when it has one, so whatever it writes belongs to the container."""
    if base is None:
        return ["chroot", rootfs]
    ensure_subordinate_ids()
    ids = "{},0,{}".format(base, ID_RANGE)
    return ["unshare", "--user", "--map-users=" + ids, "--map-groups=" + ids,
            "--setuid", "0", "--setgid", "0", "chroot", rootfs]


# --------------------------------------------------------------------------- life cycle


def clone(name, lxc_path=LXC_PATH, disk_size_mb=None, exist_ok=False, source=None):
    """A new, stopped container from the golden image (a sparse copy of it), without network
    until ``configure``. Its disk is the golden's size unless ``disk_size_mb`` says otherwise.
    ``source`` is another image file to copy instead (a named image, ``image_build``).

    An existing container of that name is refused, unless ``exist_ok`` (a job run again after
    its clone finished): then a complete one is left as it is.
    """
    validate_name(name)
    if exist_ok and exists(name, lxc_path) and os.path.isfile(rootdev_path(name, lxc_path)):
        return {"name": name, "disk_size_mb": images.image_size_mb(rootdev_path(name, lxc_path)), "changed": False}
    if name == GOLDEN_NAME:
        raise CorpusError("{} is the golden container's name.".format(name))
    golden_rootdev = source or rootdev_path(GOLDEN_NAME, lxc_path)
    if not os.path.isfile(golden_rootdev):
        if source:
            raise CorpusError("The node has no image {}.".format(source))
        raise CorpusError(
            "The node has no golden image in {}: build it with mc_lxc.golden first.".format(lxc_path)
        )
    if disk_size_mb is not None:
        disk_size_mb = check_size(disk_size_mb)
    directory = container_dir(name, lxc_path)
    if exist_ok and os.path.isdir(directory):
        shutil.rmtree(directory)  # a clone cut off half-way: no config or no image yet
    try:
        os.mkdir(directory)
    except FileExistsError:
        raise CorpusError("Container {} already exists in {}.".format(name, lxc_path)) from None
    started = time.monotonic()
    rootdev = os.path.join(directory, "rootdev")
    try:
        os.mkdir(os.path.join(directory, "rootfs"))
        images.copy_sparse(golden_rootdev, rootdev + ".part")
        if disk_size_mb is not None and disk_size_mb != images.image_size_mb(rootdev + ".part"):
            _, used = images.fs_usage_mb(rootdev + ".part")
            if disk_size_mb < used + TRIM_MARGIN_MB:
                raise CorpusError(
                    "A {} MB disk is too small for the golden image ({} MB used).".format(disk_size_mb, used)
                )
            images.resize_image(rootdev + ".part", disk_size_mb)
        # Unprivileged: the copy's files become those of the container's own id range.
        base = reserve_id_base(name, lxc_path)
        shift_started = time.monotonic()
        with images.mounted_image(rootdev + ".part") as rootfs:
            shift_rootfs(rootfs, base)
        shift_seconds = time.monotonic() - shift_started
        os.replace(rootdev + ".part", rootdev)
        write_config(name, lxc_path)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return {
        "name": name,
        "disk_size_mb": images.image_size_mb(rootdev),
        "id_base": base,
        "seconds": round(time.monotonic() - started, 2),
        "shift_seconds": round(shift_seconds, 2),
        "changed": True,
    }


def configure(name, hostname, address, gateway=None, bridge="corpusbr0", lxc_path=LXC_PATH, with_image=None):
    """Give a stopped container its hostname, static address (LXC config and the container's
    own network configuration) and SSH host keys of its own. Running it again changes only
    what differs; host keys already made are kept. ``with_image(rootfs, id base)`` runs last
    on the mounted image (``first_boot.writer``); what it returns is added to the answer."""
    require(name, lxc_path)
    if not isinstance(hostname, str) or not HOSTNAME_RE.match(hostname):
        raise CorpusError("{!r} is not a host name.".format(hostname))
    interface, gateway = parse_network(address, gateway)
    if not re.match(r"^[A-Za-z0-9_.-]{1,15}$", bridge or ""):
        raise CorpusError("{!r} is not a network interface name.".format(bridge))
    config = read_config(name, lxc_path)
    short = hostname.split(".", 1)[0]
    result = {
        "name": name,
        "hostname": hostname,
        "address": str(interface),
        "gateway": gateway,
        "bridge": bridge,
    }
    if state(name, lxc_path) != "STOPPED":
        wanted = {
            "lxc.uts.name": short,
            "lxc.net.0.link": bridge,
            "lxc.net.0.ipv4.address": str(interface),
            "lxc.net.0.ipv4.gateway": gateway,
        }
        # A job resumed after this step started the container asks again: that is no change.
        if all(config.get(key) == value for key, value in wanted.items()):
            return dict(result, changed=False)
        raise CorpusError("Container {} must be stopped to be configured.".format(name))
    network = {
        "bridge": bridge,
        "address": str(interface),
        "gateway": gateway,
        "hwaddr": config.get("lxc.net.0.hwaddr") or derived_hwaddr(name, lxc_path),
        "port": firewall.port_name(bridge, name, lxc_path),
    }
    rootdev = rootdev_path(name, lxc_path)
    with images.mounted_image(rootdev) as rootfs:
        files = {
            "etc/hostname": short + "\n",
            "etc/hosts": hosts_text(hostname),
            "etc/network/interfaces": interfaces_text(interface, gateway),
        }
        base = id_base(name, lxc_path)
        for relative, text in files.items():
            with open(os.path.join(rootfs, relative), "w", encoding="utf-8") as fh:
                fh.write(text)
            if base is not None:
                shift_path(os.path.join(rootfs, relative), base)
        # -A makes only the missing key types: new ones for a fresh clone, none on a rerun.
        run(chroot_argv(rootfs, base) + ["ssh-keygen", "-A"], "Making SSH host keys for {}".format(name))
        if with_image is not None:
            result.update(with_image(rootfs, base))
    with open(os.path.join(container_dir(name, lxc_path), "config"), "w", encoding="utf-8") as fh:
        fh.write(render_config(name, rootdev, hostname=short, network=network))
    return dict(result, changed=True)


def network_identity(name, lxc_path=LXC_PATH):
    """``{name, port, hwaddr, address, bridge}`` of a configured container (what the node's
    firewall pins it to), or None for one without network."""
    config = read_config(name, lxc_path)
    if config.get("lxc.net.0.type") != "veth" or not config.get("lxc.net.0.ipv4.address"):
        return None
    return {
        "name": name,
        "port": config.get("lxc.net.0.veth.pair"),
        "hwaddr": config.get("lxc.net.0.hwaddr"),
        "address": config["lxc.net.0.ipv4.address"].split("/", 1)[0],
        "bridge": config.get("lxc.net.0.link"),
    }


def pin_network(name, lxc_path=LXC_PATH):
    """Give a stopped container configured before ports and MACs were fixed its own port name
    and MAC, so the firewall can pin it; returns ``network_identity``. Idempotent."""
    require(name, lxc_path)
    identity = network_identity(name, lxc_path)
    if identity is None or (identity["port"] and identity["hwaddr"]) or state(name, lxc_path) != "STOPPED":
        return identity
    config = read_config(name, lxc_path)
    network = {
        "bridge": identity["bridge"],
        "address": config["lxc.net.0.ipv4.address"],
        "gateway": config.get("lxc.net.0.ipv4.gateway"),
        "hwaddr": identity["hwaddr"] or derived_hwaddr(name, lxc_path),
        "port": identity["port"] or firewall.port_name(identity["bridge"], name, lxc_path),
    }
    text = render_config(name, rootdev_path(name, lxc_path), hostname=config.get("lxc.uts.name"),
                         network=network, autostart=config.get("lxc.start.auto", "1") == "1")
    with open(os.path.join(container_dir(name, lxc_path), "config"), "w", encoding="utf-8") as fh:
        fh.write(text)
    return network_identity(name, lxc_path)


def state(name, lxc_path=LXC_PATH):
    """``RUNNING``, ``STOPPED``... as lxc-info says; ``ABSENT`` when there is no such container."""
    if not exists(name, lxc_path):
        return "ABSENT"
    return lxc_info(name, lxc_path).get("state", "STOPPED")


def lxc_info(name, lxc_path):
    proc = run(
        ["lxc-info", "-n", name, "-P", lxc_path, "-s", "-p", "-i"],
        "Reading the state of {}".format(name),
        check=False,
    )
    values = {"ips": []}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "ip":
            values["ips"].append(value)
        elif key:
            values[key] = value
    return values


def container_address(name, lxc_path):
    """The container's configured address (no prefix), or None before ``configure``."""
    address = read_config(name, lxc_path).get("lxc.net.0.ipv4.address")
    return address.split("/", 1)[0] if address else None


def start(name, lxc_path=LXC_PATH, wait=60):
    """Start a container (if it is not running) and wait until its sshd answers."""
    require(name, lxc_path)
    if name == GOLDEN_NAME:
        raise CorpusError("The golden container is a template and never runs.")
    if state(name, lxc_path) != "RUNNING":
        # lxc-start itself only says "failed to start": its log says why.
        log_path = os.path.join(container_dir(name, lxc_path), "start.log")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(log_path)
        # A container made before containers were unprivileged gets its id range first.
        make_unprivileged(name, lxc_path)
        ensure_subordinate_ids()
        with file_lock(images.LOOP_LOCK):
            proc = run(
                ["lxc-start", "-n", name, "-P", lxc_path, "-o", log_path, "-l", "ERROR"],
                "Starting container {}".format(name),
                check=False,
            )
        if proc.returncode:
            raise CorpusError(
                "Starting container {} failed: {}.".format(name, last_log_error(log_path) or last_line(proc))
            )
    address = container_address(name, lxc_path)
    if address:
        wait_for_ssh(name, address, wait)
    return {"name": name, "state": state(name, lxc_path), "ip": address}


def last_log_error(log_path):
    """The message of the first error in an LXC log (what went wrong first), or ''."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if " ERROR " in line:
                    return line.rsplit(" - ", 1)[-1].strip().rstrip(".")
    except FileNotFoundError:
        pass
    return ""


def wait_for_ssh(name, address, wait, port=SSH_PORT):
    deadline = time.monotonic() + float(wait)
    while True:
        try:
            with socket.create_connection((address, port), timeout=2) as sock:
                sock.settimeout(2)
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise CorpusError(
                "Container {} started but its SSH server did not answer on {}:{} within {} s.".format(
                    name, address, port, wait
                )
            )
        time.sleep(0.2)


def stop(name, lxc_path=LXC_PATH, timeout=30):
    """Stop a container cleanly (killed after ``timeout`` s). Stopping a stopped one is fine."""
    require(name, lxc_path)
    was = state(name, lxc_path)
    if was != "STOPPED":
        proc = run(
            ["lxc-stop", "-n", name, "-P", lxc_path, "-t", str(timeout)],
            "Stopping container {}".format(name),
            check=False,
            timeout=timeout + 30,
        )
        if proc.returncode and state(name, lxc_path) != "STOPPED":
            run(["lxc-stop", "-n", name, "-P", lxc_path, "-k"], "Killing container {}".format(name))
    return {"name": name, "state": "STOPPED", "changed": was != "STOPPED"}


def destroy(name, lxc_path=LXC_PATH):
    """Stop and delete a container and its disk. An absent container is fine."""
    directory = container_dir(name, lxc_path)
    if not os.path.isdir(directory):
        return {"name": name, "destroyed": False}
    if exists(name, lxc_path):
        if state(name, lxc_path) != "STOPPED":
            run(
                ["lxc-stop", "-n", name, "-P", lxc_path, "-k"],
                "Stopping container {}".format(name),
                check=False,
            )
        proc = run(
            ["lxc-destroy", "-n", name, "-P", lxc_path, "-f"],
            "Destroying container {}".format(name),
            check=False,
        )
        if proc.returncode and os.path.isdir(directory) and state(name, lxc_path) == "RUNNING":
            raise CorpusError("Destroying container {} failed: {}.".format(name, last_line(proc)))
    # A clone cut off half-way has no usable config: lxc-destroy does not know it.
    shutil.rmtree(directory, ignore_errors=True)
    return {"name": name, "destroyed": True}


def disk_usage_mb(name, lxc_path):
    """``(disk size, used)`` in MiB. Used counts the filesystem's own metadata (journal, inode
    tables) too, as resize2fs does; a running container's free space comes from statfs inside
    it, since the superblock of a mounted filesystem lags behind."""
    rootdev = rootdev_path(name, lxc_path)
    size = images.image_size_mb(rootdev)
    fs_size, used = images.fs_usage_mb(rootdev)
    if state(name, lxc_path) == "RUNNING":
        from mc_project.node import inside  # inside.py runs its commands through this module

        out = inside.attach(name, ["stat", "-f", "-c", "%S %f", "/"], lxc_path)
        if out["retcode"] == 0:
            block, free = (int(n) for n in out["stdout"].split())
            used = fs_size - block * free // images.MIB
    return size, used


def info(name, lxc_path=LXC_PATH):
    """``{name, state, ip, disk_size_mb, disk_used_mb}`` of one container."""
    require(name, lxc_path)
    size, used = disk_usage_mb(name, lxc_path)
    return {
        "name": name,
        "state": state(name, lxc_path),
        "ip": container_address(name, lxc_path),
        "disk_size_mb": size,
        "disk_used_mb": used,
    }


def is_spare(name):
    return bool(SPARE_RE.match(name))


def list_containers(lxc_path=LXC_PATH):
    """Every corpus container under ``lxc_path`` (not the golden or a spare one), with its state
    and address."""
    if not os.path.isdir(lxc_path):
        return []
    found = []
    for name in sorted(os.listdir(lxc_path)):
        if name != GOLDEN_NAME and not is_spare(name) and NAME_RE.match(name) and exists(name, lxc_path):
            found.append(
                {"name": name, "state": state(name, lxc_path), "ip": container_address(name, lxc_path)}
            )
    return found


def check_size(size_mb):
    try:
        size_mb = int(size_mb)
    except (TypeError, ValueError):
        raise CorpusError("{!r} is not a disk size in MB.".format(size_mb)) from None
    if size_mb < 256 or size_mb > 16 * 1024 * 1024:
        raise CorpusError("A disk size must be between 256 MB and 16 TB, not {} MB.".format(size_mb))
    return size_mb


def check_trim(name, size_mb, used_mb):
    if size_mb < used_mb + TRIM_MARGIN_MB:
        raise CorpusError(
            "Container {} uses {} MB: its disk cannot be trimmed below {} MB.".format(
                name, used_mb, used_mb + TRIM_MARGIN_MB
            )
        )


def resize(name, size_mb, lxc_path=LXC_PATH):
    """Enlarge or trim a container's fixed-size disk to ``size_mb`` MiB.

    A running container is stopped for the change and started again. Trimming below the
    space in use plus a margin is refused before anything is touched.
    """
    require(name, lxc_path)
    size_mb = check_size(size_mb)
    size, used = disk_usage_mb(name, lxc_path)
    if size_mb == size:
        return {"name": name, "disk_size_mb": size, "changed": False}
    if size_mb < size:
        check_trim(name, size_mb, used)
    was_running = state(name, lxc_path) == "RUNNING"
    if was_running:
        stop(name, lxc_path)
    try:
        rootdev = rootdev_path(name, lxc_path)
        if size_mb < size:
            # The superblock counts filesystem metadata too: the stricter check, now it is still.
            check_trim(name, size_mb, images.fs_usage_mb(rootdev)[1])
        images.resize_image(rootdev, size_mb)
    finally:
        if was_running:
            start(name, lxc_path)
    return {
        "name": name,
        "disk_size_mb": images.image_size_mb(rootdev_path(name, lxc_path)),
        "previous_mb": size,
        "changed": True,
    }
