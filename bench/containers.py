"""Container benchmark: (d) a container cloned from the golden image against a full
``lxc-create -t debian`` (root and LXC needed)."""

import os
import time

import harness  # noqa: F401  (puts the repository on sys.path)

from mc_project.node import images, lxc  # noqa: E402


def clone_vs_create(lxc_path, mirror=images.DEFAULT_MIRROR, suite=images.DEFAULT_SUITE,
                    disk_size_mb=images.DEFAULT_DISK_SIZE_MB):
    """Seconds for a container cloned from the golden image vs one made by a full template create.

    The template create still uses lxc's debootstrap cache when it is warm, as it would on a
    node: the comparison is with the fastest create LXC offers. Both containers are removed.
    """
    lxc.golden(lxc_path, mirror, suite, disk_size_mb)
    clone_name, create_name = "bench-clone-{}".format(os.getpid()), "bench-create-{}".format(os.getpid())
    try:
        started = time.monotonic()
        lxc.clone(clone_name, lxc_path)
        clone_seconds = time.monotonic() - started
        started = time.monotonic()
        images.template_create(create_name, lxc_path, mirror, suite, disk_size_mb)
        create_seconds = time.monotonic() - started
    finally:
        lxc.destroy(clone_name, lxc_path)
        lxc.destroy(create_name, lxc_path)
    return {
        "clone_seconds": round(clone_seconds, 2),
        "create_seconds": round(create_seconds, 2),
        "create_over_clone": round(create_seconds / clone_seconds, 1) if clone_seconds else None,
    }
