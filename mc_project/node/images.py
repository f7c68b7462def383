"""Disk images of containers: the golden image a node clones its containers from, and the
loop images (fixed-size ext4 files) every container's root filesystem lives in.

The golden image is built once per machine from the Debian template into a cache
(``/var/cache/corpus/golden``, or ``$CORPUS_GOLDEN_CACHE``) and copied from there into each
``lxc_path`` that needs it (``lxc.golden``).
"""

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import tempfile
import time

from mc_project.errors import CorpusError
from mc_project.node.shell import file_lock, last_line, run

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SUITE = "bookworm"
DEFAULT_DISK_SIZE_MB = 2048
# haproxy: each project's front (mc_project/project/front.py).
GOLDEN_PACKAGES = ("python3", "python3-venv", "git", "rsync", "openssh-server", "ca-certificates", "haproxy")
# How the image is built: a cached image of another recipe (or another package list) is built
# again. 2: the packages are installed by ``install_packages``, which fails when apt does.
GOLDEN_RECIPE = 2
DEFAULT_GOLDEN_CACHE = "/var/cache/corpus/golden"

MIB = 1024 * 1024

# Attaching loop devices races between processes ("Failed to set loop fd"):
# every attach on this machine (lxc-start of a loop rootfs, mount -o loop) takes it.
LOOP_LOCK = "/run/lock/corpus-loop.lock"
UMOUNT_WAIT = 30  # seconds an unmount made busy by a container starting is tried again


def golden_cache_dir():
    return os.environ.get("CORPUS_GOLDEN_CACHE") or DEFAULT_GOLDEN_CACHE


def copy_sparse(source, target):
    """Copy a loop image: holes stay holes, and a reflink is used where the filesystem has them."""
    run(["cp", "--sparse=always", "--reflink=auto", source, target], "Copying {}".format(source))


def fs_usage_mb(image):
    """``(filesystem size, used)`` in MiB from an unmounted ext4 image's superblock."""
    out = run(["dumpe2fs", "-h", image], "Reading the filesystem of {}".format(image)).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    block = int(fields["Block size"])
    count, free = int(fields["Block count"]), int(fields["Free blocks"])
    return count * block // MIB, (count - free) * block // MIB


def image_size_mb(image):
    return os.stat(image).st_size // MIB


def resize_image(image, size_mb):
    """Make an unmounted ext4 image ``size_mb`` MiB (grow: file then filesystem; shrink: the reverse)."""
    current = os.stat(image).st_size
    target = size_mb * MIB
    wait_image_released(image)
    proc = run(["e2fsck", "-f", "-y", image], "Checking the filesystem of {}".format(image), check=False)
    if proc.returncode > 2:  # 1 and 2 mean "errors corrected"
        raise CorpusError("Checking the filesystem of {} failed: {}.".format(image, last_line(proc)))
    if target > current:
        os.truncate(image, target)
        try:
            run(["resize2fs", image], "Enlarging the filesystem of {}".format(image))
        except CorpusError:
            os.truncate(image, current)
            raise
    elif target < current:
        run(["resize2fs", image, "{}M".format(size_mb)], "Shrinking the filesystem of {}".format(image))
        os.truncate(image, target)


def wait_image_released(image, wait=15):
    """Wait until no loop device holds ``image``: a container just stopped may still have it
    attached for a moment, and e2fsck refuses an image in use."""
    deadline = time.monotonic() + wait
    while run(["losetup", "-j", image], "Looking for loop devices of {}".format(image)).stdout.strip():
        if time.monotonic() > deadline:
            raise CorpusError("The disk {} is still in use.".format(image))
        time.sleep(0.1)


@contextlib.contextmanager
def mounted_image(image):
    """Mount a stopped container's image on a temporary directory for the time of the block."""
    mountpoint = tempfile.mkdtemp(prefix="corpus-rootfs-")
    try:
        with file_lock(LOOP_LOCK):
            run(["mount", "-o", "loop", image, mountpoint], "Mounting {}".format(image))
        try:
            yield mountpoint
        finally:
            unmount(mountpoint, image)
    finally:
        if not os.path.ismount(mountpoint):  # a mount that could not go keeps its directory
            os.rmdir(mountpoint)


def unmount(mountpoint, image, wait=UMOUNT_WAIT):
    """Unmount ``image`` from ``mountpoint``. A container that starts meanwhile gets a copy of
    the node's mounts, this one among them, which the unmount reaches too (shared
    propagation): busy for a moment, it is tried again for ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        proc = run(["umount", mountpoint], "Unmounting {}".format(image), check=False)
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise CorpusError("Unmounting {} failed: {}.".format(image, last_line(proc) or "busy"))
        time.sleep(0.2)


def prepare_golden_rootfs(rootfs):
    """Make a freshly built template rootfs fit to be copied: no identity of its own.

    Host keys and the machine id are removed (each container gets its own), the network
    configuration waits for ``configure`` (the template's DHCP would hold the boot for ~50 s),
    and downloaded packages go.
    """
    for name in os.listdir(os.path.join(rootfs, "etc", "ssh")):
        if name.startswith("ssh_host_"):
            os.unlink(os.path.join(rootfs, "etc", "ssh", name))
    # An empty machine-id makes systemd generate a new one at first boot.
    with open(os.path.join(rootfs, "etc", "machine-id"), "w", encoding="utf-8"):
        pass
    with open(os.path.join(rootfs, "etc", "network", "interfaces"), "w", encoding="utf-8") as fh:
        fh.write("auto lo\niface lo inet loopback\n")
    archives = os.path.join(rootfs, "var", "cache", "apt", "archives")
    for name in os.listdir(archives):
        if name.endswith(".deb"):
            os.unlink(os.path.join(archives, name))


def security_mirror(mirror):
    """The security archive next to ``mirror`` (``.../debian`` -> ``.../debian-security``)."""
    return (
        mirror.rstrip("/") + "-security"
        if mirror.rstrip("/").endswith("/debian")
        else "http://deb.debian.org/debian-security"
    )


def template_create(name, lxc_path, mirror, suite, disk_size_mb):
    """A full ``lxc-create -t debian`` with a loop backing store and no network: the Debian base
    system alone (``install_packages`` adds the rest)."""
    os.makedirs(lxc_path, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".conf", prefix="corpus-lxc-") as conf:
        conf.write("lxc.net.0.type = empty\n")
        conf.flush()
        env = dict(os.environ, MIRROR=mirror, SECURITY_MIRROR=security_mirror(mirror))
        run(
            [
                "lxc-create",
                "-n",
                name,
                "-P",
                lxc_path,
                "-t",
                "debian",
                "-B",
                "loop",
                "--fssize",
                "{}M".format(disk_size_mb),
                "-f",
                conf.name,
                "--",
                "-r",
                suite,
            ],
            "Creating container {} from the Debian template ({})".format(name, suite),
            env=env,
        )


# A service a package would start in the image at build time would run on the building machine.
POLICY_RC_D = "#!/bin/sh\nexit 101\n"
APT_TRIES = 3
APT_FIX_TIMEOUT = 600  # seconds for what is run before another try (dpkg --configure -a)


@contextlib.contextmanager
def _build_time_files(rootfs):
    """This machine's resolver in the image and no service started, for the time of the block."""
    added = {os.path.join(rootfs, "usr", "sbin", "policy-rc.d"): (POLICY_RC_D, 0o755)}
    resolv = os.path.join(rootfs, "etc", "resolv.conf")
    saved = resolv + ".corpus-build"
    if os.path.lexists(resolv):
        os.replace(resolv, saved)
    with open("/etc/resolv.conf", encoding="utf-8") as fh:
        added[resolv] = (fh.read(), 0o644)
    try:
        for path, (text, mode) in added.items():
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w", encoding="utf-8") as fh:
                fh.write(text)
        yield
    finally:
        for path in added:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if os.path.lexists(saved):
            os.replace(saved, resolv)


def sources_list(mirror, suite):
    """The image's APT sources: the suite, its updates and its security archive. (The template
    names the security suite after what its distro-info knows, ``bookworm/updates`` where that
    is old, which no mirror has.)"""
    return "".join("deb {} {} main\n".format(url, name) for url, name in (
        (mirror, suite), (mirror, suite + "-updates"), (security_mirror(mirror), suite + "-security")))


def install_packages(rootfs, mirror=DEFAULT_MIRROR, suite=DEFAULT_SUITE, packages=GOLDEN_PACKAGES):
    """``apt-get install`` of ``packages`` in the image mounted on ``rootfs`` (a chroot).

    Not the template's own ``--packages``: when its ``apt-get update`` fails it goes on without
    them in silence, and the image has no Python."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with open(os.path.join(rootfs, "etc", "apt", "sources.list"), "w", encoding="utf-8") as fh:
        fh.write(sources_list(mirror, suite))
    with _build_time_files(rootfs):
        _tried_again(rootfs, ["apt-get", "update"], "Updating the golden image's package lists", 600, env)
        # A package's set-up in a chroot that fails once (a download cut short, a maintainer
        # script) is finished on the next try: dpkg picks up where it stopped.
        _tried_again(rootfs, ["apt-get", "install", "-y", "--no-install-recommends"] + list(packages),
                     "Installing {} into the golden image".format(", ".join(packages)), 1800, env,
                     before_again=["dpkg", "--configure", "-a"])


def _tried_again(rootfs, command, what, timeout, env, before_again=None):
    """``command`` in the chroot ``rootfs``, up to ``APT_TRIES`` times (``before_again`` run
    before each new try); its last failure in one sentence."""
    for attempt in range(1, APT_TRIES + 1):
        if attempt > 1 and before_again:
            run(["chroot", rootfs] + before_again, what, check=False, timeout=APT_FIX_TIMEOUT, env=env)
        proc = run(["chroot", rootfs] + command, what, check=False, timeout=timeout, env=env)
        if not proc.returncode:
            return
        if attempt == APT_TRIES:
            raise CorpusError("{} failed: {}.".format(what, last_line(proc)))
        time.sleep(2 * attempt)


def build_golden_image(
    mirror=DEFAULT_MIRROR, suite=DEFAULT_SUITE, disk_size_mb=DEFAULT_DISK_SIZE_MB, cache_dir=None
):
    """The machine's cached golden image for ``suite``, built from the Debian template if missing.

    Returns ``{"image", "built", "seconds"}``. The cache holds ``<suite>.img`` and
    ``<suite>.json`` (how and when it was built); a lock serialises builders.
    """
    if not re.match(r"^[a-z]+$", suite or ""):
        raise CorpusError("{!r} is not a Debian suite name.".format(suite))
    cache_dir = cache_dir or golden_cache_dir()
    image = os.path.join(cache_dir, "{}.img".format(suite))
    started = time.monotonic()
    with file_lock(os.path.join(cache_dir, ".lock")):
        if os.path.isfile(image) and cached_recipe(cache_dir, suite) == (GOLDEN_RECIPE, list(GOLDEN_PACKAGES)):
            return {"image": image, "built": False, "seconds": round(time.monotonic() - started, 2)}
        build_path = os.path.join(cache_dir, "build")
        build_name = "golden-{}".format(suite)
        run(["lxc-destroy", "-n", build_name, "-P", build_path, "-f"], "Removing an old build", check=False)
        shutil.rmtree(os.path.join(build_path, build_name), ignore_errors=True)
        try:
            template_create(build_name, build_path, mirror, suite, disk_size_mb)
            built = os.path.join(build_path, build_name, "rootdev")
            with mounted_image(built) as rootfs:
                install_packages(rootfs, mirror, suite)
                prepare_golden_rootfs(rootfs)
            os.replace(built, image + ".part")
            os.replace(image + ".part", image)
        finally:
            shutil.rmtree(os.path.join(build_path, build_name), ignore_errors=True)
        seconds = round(time.monotonic() - started, 2)
        with open(os.path.join(cache_dir, "{}.json".format(suite)), "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "suite": suite,
                    "mirror": mirror,
                    "disk_size_mb": disk_size_mb,
                    "recipe": GOLDEN_RECIPE,
                    "packages": list(GOLDEN_PACKAGES),
                    "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "seconds": seconds,
                },
                fh,
                indent=2,
            )
    return {"image": image, "built": True, "seconds": seconds}


def cached_recipe(cache_dir, suite):
    """The recipe and packages the cached image was built with ((None, None) when unknown): a
    change of either rebuilds it."""
    try:
        with open(os.path.join(cache_dir, "{}.json".format(suite)), encoding="utf-8") as fh:
            built = json.load(fh)
        return built.get("recipe"), built.get("packages")
    except (OSError, ValueError, AttributeError):
        return None, None


# --------------------------------------------------------------------------- the minion's venv

# The golden image carries the container minion's venv (Salt, corpus and their dependencies from
# the node's wheelhouse) and the stamp of the wheelhouse it was installed from: a container whose
# stamp is the node's wheelhouse's needs no pip at all (``minion.install_minion``).
MINION_PREFIX = "/opt/corpus"
MINION_VENV = MINION_PREFIX + "/venv"
VENV_STAMP = MINION_PREFIX + "/.wheelhouse-stamp"


DIGEST_CACHE = ".corpus-wheelhouse-digest.json"


def wheelhouse_stamp(wheelhouse):
    """A digest of the wheels in ``wheelhouse`` (names and contents): it changes with any wheel.

    Every new container asks for it: the digest is kept beside the wheels with the name, inode,
    size and time of each, and the wheels are read again only when one of those changed."""
    wheels = sorted(name for name in os.listdir(wheelhouse) if name.endswith(".whl"))
    if not any(name.startswith("corpus-") for name in wheels):
        raise CorpusError("The wheelhouse {} has no corpus wheel.".format(wheelhouse))
    listing = []
    for name in wheels:
        st = os.stat(os.path.join(wheelhouse, name))
        listing.append([name, st.st_ino, st.st_size, st.st_mtime_ns])
    cache = os.path.join(wheelhouse, DIGEST_CACHE)
    try:
        with open(cache, encoding="utf-8") as fh:
            cached = json.load(fh)
        if cached.get("wheels") == listing and isinstance(cached.get("digest"), str):
            return cached["digest"]
    except (OSError, ValueError, AttributeError):
        pass
    digest = hashlib.sha256()
    for name in wheels:
        digest.update(name.encode() + b"\0")
        with open(os.path.join(wheelhouse, name), "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    stamp = digest.hexdigest()
    with contextlib.suppress(OSError):  # a wheelhouse this process cannot write is hashed each time
        with open(cache + ".part", "w", encoding="utf-8") as fh:
            json.dump({"wheels": listing, "digest": stamp}, fh)
        os.replace(cache + ".part", cache)
    return stamp


def venv_install_script(wheelhouse):
    """The shell that (re)makes the minion's venv from the wheels in ``wheelhouse`` (a path inside
    the container or image), with no index."""
    return (
        "rm -rf {venv} && python3 -m venv {venv} && "
        "PIP_DISABLE_PIP_VERSION_CHECK=1 {venv}/bin/pip install -q --no-cache-dir --no-index "
        "--find-links {wheels} corpus"
    ).format(venv=MINION_VENV, wheels=wheelhouse)


def bake_minion_venv(rootfs, wheelhouse, stamp):
    """Install the minion's venv from ``wheelhouse`` into the mounted (privileged) image
    ``rootfs`` and stamp it. pip runs chrooted, with the node's /dev and a /proc of its own
    in a private mount namespace that ends with it."""
    staged = os.path.join(rootfs, MINION_PREFIX.lstrip("/"), "wheelhouse")
    shutil.rmtree(staged, ignore_errors=True)
    os.makedirs(staged)
    try:
        for name in os.listdir(wheelhouse):
            if name.endswith(".whl"):
                shutil.copyfile(os.path.join(wheelhouse, name), os.path.join(staged, name))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(rootfs, VENV_STAMP.lstrip("/")))
        inner = "/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root " + \
            "sh -c {}".format(shlex.quote(venv_install_script(MINION_PREFIX + "/wheelhouse")))
        script = "mount --rbind /dev {0}/dev && mount -t proc proc {0}/proc && exec chroot {0} {1}".format(
            shlex.quote(rootfs), inner)
        run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            "Installing the minion's venv in the golden image", timeout=1800)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    with open(os.path.join(rootfs, VENV_STAMP.lstrip("/")), "w", encoding="utf-8") as fh:
        fh.write(stamp + "\n")
