"""Salt runner: the controller's compute nodes and environments (LXC containers).

Every operation that changes something is a job (see ``salt-run mc_jobs.status``):
its steps, their progress and logs are kept in the inventory named by the
master option ``corpus:db_url``, and an event is fired per step
(``corpus/job/<id>/...``). A failed job has undone what it did.
"""

import threading

import salt.utils.event

from mc_project.controller import operations
from mc_project.controller.runtime import Controller
from mc_project.errors import CorpusError

__virtualname__ = "mc_cloud"


def __virtual__():
    return __virtualname__


_PRINTING = threading.Lock()


def _controller():
    return Controller(__opts__)


def _progress(message):
    """Show a line of progress under ``salt-run`` while the job runs.

    Steps that run at the same time report from threads of their own: the runner's event
    connection belongs to its main thread (used from another one, it breaks the runner's
    own last event), so they fire on a connection of their own."""
    jid_event = globals().get("__jid_event__")
    if jid_event is None:
        return
    data = {"message": message}
    # One line at a time: two threads printing at once interleave their JSON documents,
    # and salt-run's output could no longer be read.
    with _PRINTING:
        if threading.current_thread() is threading.main_thread():
            jid_event.fire_event(data, "progress")
            return
        with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=False) as event:
            event.fire_event(data, salt.utils.event.tagify("progress", base=jid_event.base))
        if jid_event.print_func is not None:
            jid_event.print_func("progress", data)


def _answer(func, *args, **kwargs):
    """Run ``func``; a refusal or failure is one sentence and salt-run exits 1."""
    try:
        result = func(*args, **kwargs)
    except CorpusError as exc:
        __context__["retcode"] = 1
        return {"result": False, "comment": str(exc), "retcode": 1}
    if isinstance(result, dict) and result.get("result") is False:
        __context__["retcode"] = 1
        result["retcode"] = 1  # what salt-run reads for its exit code
    return result


def link_node(host, user="root", key=None, port=22, name=None, slots=10, subnet=None, http_port=80,
              prefix="/srv/corpus", lxc_path="/var/lib/lxc", dns_name=None, bridge="corpusbr0",
              nft_table=None, nat_ports="40000-40999"):
    """
    Link a compute node over SSH: install corpus and a salt-minion there from
    this controller, accept its key, set up LXC, its bridge, NAT and proxy, and
    record it in the inventory. The node's nftables tables are its own
    (``corpus_<name>_<hash>`` unless ``nft_table`` names them).

    CLI Example:

    .. code-block:: bash

        salt-run mc_cloud.link_node 192.0.2.10 user=root key=/root/.ssh/id_ed25519 slots=20 nat_ports=40000-40999
    """
    # Numbers are checked by link_node, which refuses a bad one in one sentence.
    return _answer(operations.link_node, _controller(), host, user=user, key=key, port=port,
                   name=name, slots=slots, subnet=subnet, http_port=http_port, prefix=prefix,
                   lxc_path=lxc_path, dns_name=dns_name, bridge=bridge, nft_table=nft_table,
                   nat_ports=nat_ports)


def unlink_node(name, force=False):
    """
    Forget a compute node: refused while environments live on it unless
    ``force=True``. Its haproxy, nftables tables, golden container and bridge
    are taken away (``removed``; ``kept`` says what stayed and why), its minion
    is stopped and its key removed.

    CLI Example:

    .. code-block:: bash

        salt-run mc_cloud.unlink_node node1
    """
    return _answer(operations.unlink_node, _controller(), name, force=force)


def list_hosts():
    """
    List the compute nodes with address, DNS name, free slots and guest type.

    CLI Example:

    .. code-block:: bash

        salt-run mc_cloud.list_hosts
    """
    return _answer(operations.list_hosts, _controller())


def init_env(name, env_type="dev", project=None, host=None, requester=None, disk_size_mb=None, image=None):
    """
    Create an environment: a container for project ``project`` (default: the
    environment's name) on a node with a free slot (or ``host``), reachable
    at ``<name>.<domain>`` (HTTP through the node's proxy, SSH on a NATed node
    port), with its minion, pillar, DNS records and project remotes, cloned
    from ``image`` (NAME or NAME:VERSION; default: the default image's current
    version). Returns the job's status with the environment's UUID and access details.

    CLI Example:

    .. code-block:: bash

        salt-run mc_cloud.init_env myapp staging requester=dev@example.com
    """
    return _answer(operations.init_env, _controller(), name, env_type, project=project, host=host,
                   requester=requester, disk_size_mb=disk_size_mb, progress=_progress, image=image)


def redeploy(name, image=None):
    """
    Redeploy an environment: a new container from the current golden image (or ``image``)
    beside the old one, its projects restored and checked, then traffic, SSH, DNS and keys
    switched to it; the old one is stopped, and destroyed after corpus:redeploy_keep_hours.

    CLI Example:

    .. code-block:: bash

        salt-run mc_cloud.redeploy myapp
    """
    return _answer(operations.redeploy, _controller(), name, image=image, progress=_progress)


def destroy_retired():
    """
    Destroy the old containers of redeploys kept longer than corpus:redeploy_keep_hours
    (run it from a schedule); the names of those destroyed.

    CLI Example:

    .. code-block:: bash

        salt-run mc_cloud.destroy_retired
    """
    return _answer(operations.destroy_retired, _controller())


def destroy_env(name):
    """
    Destroy an environment: its container, address, ports, proxy routes, DNS
    records, keys, secrets and pillar.

    CLI Example:

    .. code-block:: bash

        salt-run mc_cloud.destroy_env myapp
    """
    return _answer(operations.destroy_env, _controller(), name, progress=_progress)


def enlarge(name, size_mb):
    """
    Grow an environment's root filesystem to ``size_mb`` MiB.

    CLI Example:

    .. code-block:: bash

        salt-run mc_cloud.enlarge myapp 4096
    """
    return _answer(operations.resize_env, _controller(), name, size_mb, grow=True, progress=_progress)


def trim(name, size_mb):
    """
    Shrink an environment's root filesystem to ``size_mb`` MiB; refused below
    the space in use.

    CLI Example:

    .. code-block:: bash

        salt-run mc_cloud.trim myapp 1024
    """
    return _answer(operations.resize_env, _controller(), name, size_mb, grow=False, progress=_progress)


def link_dns(name, domain):
    """
    Serve an environment under one more domain (proxy route and DNS records).

    CLI Example:

    .. code-block:: bash

        salt-run mc_cloud.link_dns myapp www.example.com
    """
    return _answer(operations.link_dns, _controller(), name, domain, progress=_progress)


def add_project(name, project):
    """
    Create the git remotes of one more project in environment ``name``.

    CLI Example:

    .. code-block:: bash

        salt-run mc_cloud.add_project myapp api
    """
    return _answer(operations.add_project, _controller(), name, project, progress=_progress)


def destroy_project(name, project):
    """
    Stop and remove one project of environment ``name`` (its app, releases,
    data and remotes); the environment and its other projects stay.

    CLI Example:

    .. code-block:: bash

        salt-run mc_cloud.destroy_project myapp api
    """
    return _answer(operations.destroy_project, _controller(), name, project, progress=_progress)


def rollback(name, project, release=None):
    """
    Make a kept release of ``project`` in environment ``name`` live again (default:
    the one before the live one), as a job; undoing the job makes the release that
    was live before live again. An editable project, an unknown release or the live
    one are refused before any job is made.

    CLI Example:

    .. code-block:: bash

        salt-run mc_cloud.rollback myapp myapp
        salt-run mc_cloud.rollback myapp api 20261122T101500-ab12cd34
    """
    # Salt's command line reads an all-digit id as a number.
    release = None if release is None else str(release)
    return _answer(operations.rollback, _controller(), name, str(project), release=release, progress=_progress)


def list_envs():
    """
    List the environments with their node, address, ports, domains and status.

    CLI Example:

    .. code-block:: bash

        salt-run mc_cloud.list_envs
    """
    return _answer(operations.list_envs, _controller())


def credentials(name):
    """
    Show an environment's root password and SSH private key (kept as secrets
    on the controller; they are never mailed or logged).

    CLI Example:

    .. code-block:: bash

        salt-run mc_cloud.credentials myapp
    """
    return _answer(operations.credentials, _controller(), name)
