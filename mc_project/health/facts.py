"""What a host's detectors look at, gathered on the host itself (by the minion's
``mc_health_detect`` module): its grains, installed packages, listening ports,
running services, and a lazy view of its files.

Each fact that cannot be read (no package manager, no init system) is empty, with
a note saying why: a detector over it is then false, never an error of the run.
"""

import os

import psutil

FACT_NAMES = ("grains", "packages", "files", "ports", "services")


class Files:
    """``'/etc/nginx/nginx.conf' in files``: whether that path exists on the host. Only
    the paths a rule names are ever looked at, never a listing of the disk."""

    def __contains__(self, path):
        return isinstance(path, str) and os.path.isabs(path) and os.path.exists(path)

    def __repr__(self):
        return "<files of this host>"


def listening_ports():
    """The TCP ports something listens on (any address), from the kernel's socket tables:
    no root needed, since only the ports are read, not which process holds them."""
    ports = set()
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr:
            ports.add(connection.laddr.port)
    return ports


def process_names():
    names = set()
    for process in psutil.process_iter(["name"]):
        if process.info.get("name"):
            names.add(process.info["name"])
    return names


def gather(grains, list_packages=None, running_services=None):
    """``(facts, notes)``: the mapping a detector's expression is evaluated over.

    ``list_packages()`` gives ``{name: version}`` (Salt's ``pkg.list_pkgs``);
    ``running_services()`` the running services' names (Salt's ``service.get_running``).
    The running processes' names count as services too: a host without an init system
    (a plain container) still says what runs on it.
    """
    notes = []
    packages = {}
    if list_packages is not None:
        try:
            packages = dict(list_packages() or {})
        except Exception as exc:  # pylint: disable=broad-except
            notes.append("packages unread: {}".format(str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
    services = set()
    if running_services is not None:
        try:
            services.update(running_services() or ())
        except Exception as exc:  # pylint: disable=broad-except
            notes.append("services unread: {}".format(str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
    try:
        services.update(process_names())
    except psutil.Error as exc:
        notes.append("processes unread: {}".format(exc))
    try:
        ports = listening_ports()
    except (psutil.Error, OSError) as exc:
        ports = set()
        notes.append("ports unread: {}".format(exc))
    facts = {"grains": dict(grains or {}), "packages": packages, "files": Files(), "ports": ports,
             "services": services}
    return facts, notes
