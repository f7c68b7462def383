"""Salt execution module for a corpus compute node: LXC containers, NAT, HTTP proxy.

The logic is in ``mc_project.node``; this module parses arguments and turns a
``CorpusError`` into one sentence. Paths default to the minion options
``mc_lxc:lxc_path`` (``/var/lib/lxc``), ``mc_lxc:state_dir`` (``/var/lib/corpus/node``,
where the proxy routes and saved port mappings live) and ``mc_lxc:nft_table`` (``corpus``).
"""

import ipaddress
import socket

from salt.exceptions import CommandExecutionError

try:
    from mc_project import sealed
    from mc_project.errors import CorpusError
    from mc_project.node import first_boot, firewall, host, image_build, inside, lxc, minion, nat, proxy, spares

    HAS_CORPUS = True
except ImportError:  # pragma: no cover - corpus not installed on this minion
    HAS_CORPUS = False

__virtualname__ = "mc_lxc"


def __virtual__():
    if not HAS_CORPUS:
        return False, "the corpus package (mc_project) is not importable"
    return __virtualname__


def _call(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except CorpusError as exc:
        __context__["retcode"] = 1
        raise CommandExecutionError(str(exc)) from None


def _lxc_path(lxc_path):
    return lxc_path or __salt__["config.get"]("mc_lxc:lxc_path", lxc.LXC_PATH)


def _state_dir(state_dir):
    return state_dir or __salt__["config.get"]("mc_lxc:state_dir", proxy.DEFAULT_STATE_DIR)


def _table(table):
    return table or __salt__["config.get"]("mc_lxc:nft_table", nat.DEFAULT_TABLE)


def _master_services():
    """The master's publish and return ports, at the address this node's minion reaches it on:
    what containers may reach on the node when the master runs there."""
    master = __opts__.get("master")
    if not isinstance(master, str) or not master:
        return []
    try:
        address = str(ipaddress.IPv4Address(master))
    except ValueError:
        try:
            address = socket.getaddrinfo(master, None, socket.AF_INET)[0][4][0]
        except (OSError, IndexError):
            return []
    ports = {int(__opts__.get("publish_port") or 4505), int(__opts__.get("master_port") or 4506)}
    return [(address, "tcp", port) for port in sorted(ports)]


def _guard(name, lxc_path, table, state_dir, pin=False):
    """Pin a configured container to its port, MAC and address in the node's firewall."""
    identity = (lxc.pin_network if pin else lxc.network_identity)(name, lxc_path)
    if identity is not None:
        firewall.allow_container(identity, table, state_dir)


def setup_node(
    bridge="corpusbr0",
    subnet="10.77.0.0/24",
    http_port=80,
    lxc_path=None,
    state_dir=None,
    table=None,
    http_bind="",
    outbound=None,
    previous_tables=None,
):
    """
    Prepare this node: bridge up with the subnet's first host, forwarding on, the nftables
    tables (masquerade, NAT maps, the firewall), haproxy on ``http_port``. Idempotent.

    Containers may reach on the node only DNS on the bridge's address and the master's ports
    (those this minion uses), beyond it the ``outbound`` networks (default: all of IPv4).
    ``previous_tables`` are tables the node used before ``table``: it leaves them.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.setup_node bridge=corpusbr0 subnet=10.77.0.0/24 http_port=80
    """
    return _call(
        host.setup_node,
        bridge,
        subnet,
        http_port,
        _lxc_path(lxc_path),
        _state_dir(state_dir),
        _table(table),
        http_bind,
        _master_services(),
        outbound or (firewall.ALL_IPV4,),
        previous_tables or (),
    )


def teardown_node(bridge, subnet, lxc_path=None, state_dir=None, table=None):
    """
    Take away what ``setup_node`` and the first container made: haproxy, the node's nftables
    tables (only its own elements of a table another node uses), the golden container and the
    bridge (kept while another node or a container uses it). Returns ``{removed, kept}``, one
    sentence per item.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.teardown_node corpusbr0 10.77.0.0/24
    """
    return _call(host.teardown_node, bridge, subnet, _lxc_path(lxc_path), _state_dir(state_dir), _table(table))


def golden(lxc_path=None, mirror="http://deb.debian.org/debian", suite="bookworm", disk_size_mb=2048,
           wheelhouse=None):
    """
    Make sure the node has its golden container ``corpus-golden`` (from the machine's
    cache, built from the Debian template the first time). With ``wheelhouse``, its image
    carries the container minion's venv installed from it, baked again when the wheelhouse
    changed. Returns ``{name, built, seconds, venv}``.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.golden mirror=http://deb.debian.org/debian suite=bookworm
    """
    return _call(lxc.golden, _lxc_path(lxc_path), mirror, suite, disk_size_mb, wheelhouse)


def _golden(lxc_path, golden):
    """``lxc.golden`` with the ``{mirror, suite, disk_size_mb, wheelhouse}`` mapping ``golden``."""
    if not isinstance(golden, dict):
        __context__["retcode"] = 1
        raise CommandExecutionError("golden must be a mapping (mirror, suite, disk_size_mb, wheelhouse).")
    return _call(lxc.golden, lxc_path, golden.get("mirror", lxc.DEFAULT_MIRROR), golden.get("suite", lxc.DEFAULT_SUITE),
                 golden.get("disk_size_mb", lxc.DEFAULT_DISK_SIZE_MB), golden.get("wheelhouse"))


def _image_source(lxc_path, image):
    """The file a clone copies for ``image`` (``{name, version, golden}``): None for the golden."""
    if not image or image.get("golden"):
        return None
    return _call(image_build.image_file, lxc_path, image.get("name"), image.get("version"))


def clone(name, lxc_path=None, disk_size_mb=None, exist_ok=False, spare=1, golden=None, image=None):
    """
    Create stopped container ``name`` as a copy of the golden image, or of the named image
    ``image`` (``{name, version, golden}``; ``golden`` true: it is the golden image). An
    existing container is refused unless ``exist_ok`` (then a complete one is left as it
    is). With ``spare`` (how many spare containers the node keeps; 0: none), a spare becomes
    it when one made from that image fits, and the missing spares are made in the background.
    ``golden`` (``{mirror, suite, disk_size_mb, wheelhouse}``) makes sure of the golden image
    first, as ``mc_lxc.golden`` does, in the same call; its answer is under ``golden``.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.clone ct-myapp-staging disk_size_mb=4096
    """
    lxc_path = _lxc_path(lxc_path)
    source = _image_source(lxc_path, image)
    made_golden = _golden(lxc_path, golden) if golden is not None and source is None else None
    made = _call(spares.clone, name, lxc_path, disk_size_mb, exist_ok, int(spare), source)
    return dict(made, golden=made_golden) if made_golden is not None else made


def build_image(name, version, lxc_path=None, states=None, golden=None):
    """
    Build image ``name:version`` from the golden image (made sure of first with ``golden``,
    as ``mc_lxc.clone`` does) and the state tree ``states`` (``{path: {content (base64),
    mode}}``; none: the golden image as it is). Returns ``{result, image, digest, size_mb,
    message, log, seconds}``: a failed build leaves no image, only its log.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.build_image web 3
    """
    lxc_path = _lxc_path(lxc_path)
    made_golden = _golden(lxc_path, golden or {})
    built = _call(image_build.build, lxc_path, lxc.rootdev_path(lxc.GOLDEN_NAME, lxc_path), name, int(version),
                  states or None)
    return dict(built, golden=made_golden)


def remove_image(name, version, lxc_path=None):
    """
    Delete image ``name:version`` from this node. Returns ``{name, version, removed}``.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.remove_image web 2
    """
    return _call(image_build.remove, _lxc_path(lxc_path), name, int(version))


def configure(name, hostname, address, gateway=None, bridge="corpusbr0", lxc_path=None, table=None,
              state_dir=None, sealed_password_hash=None, root_key=None, booted_minion=None):
    """
    Set a stopped container's hostname, static address (CIDR), MAC, port on the bridge and
    fresh SSH host keys, and pin it to them in the node's firewall. With ``root_key`` and
    ``sealed_password_hash`` (root's SHA-512 crypt hash sealed to this minion's key), root's
    credentials are written in too, and with ``booted_minion`` (``{master, minion_id,
    wheelhouse, publish_port, master_port}``) a minion that starts with the container; the
    answer then has its ``host_keys``, ``minion`` and ``minion_public_key``.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.configure ct-myapp myapp.corpus.test 10.77.0.10/24
    """
    lxc_path = _lxc_path(lxc_path)
    if root_key is None and sealed_password_hash is None:
        result = _call(lxc.configure, name, hostname, address, gateway, bridge, lxc_path)
    else:
        password_hash = _call(sealed.open_with_minion_key, __opts__["pki_dir"], sealed_password_hash or "")
        result = _call(first_boot.configure, name, hostname, address, gateway, bridge, lxc_path,
                       password_hash=password_hash, root_key=root_key, booted_minion=booted_minion)
    _call(_guard, name, lxc_path, _table(table), _state_dir(state_dir))
    return result


def start(name, lxc_path=None, wait=60, table=None, state_dir=None):
    """
    Start a container and wait (up to ``wait`` s) until its sshd answers. A container configured
    before ports and MACs were fixed gets them first; it is pinned in the firewall either way.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.start ct-myapp
    """
    lxc_path = _lxc_path(lxc_path)
    _call(_guard, name, lxc_path, _table(table), _state_dir(state_dir), pin=True)
    return _call(lxc.start, name, lxc_path, wait)


def stop(name, lxc_path=None):
    """
    Stop a container.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.stop ct-myapp
    """
    return _call(lxc.stop, name, _lxc_path(lxc_path))


def destroy(name, lxc_path=None, table=None, state_dir=None):
    """
    Stop and delete a container and its disk, and unpin it from the node's firewall; an absent
    container is fine.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.destroy ct-myapp
    """
    result = _call(lxc.destroy, name, _lxc_path(lxc_path))
    _call(firewall.forget_container, name, _table(table), _state_dir(state_dir))
    return result


def info(name, lxc_path=None):
    """
    ``{name, state, ip, disk_size_mb, disk_used_mb}`` of a container.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.info ct-myapp
    """
    return _call(lxc.info, name, _lxc_path(lxc_path))


def list_containers(lxc_path=None):
    """
    The node's corpus containers with their state and address.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.list_containers
    """
    return _call(lxc.list_containers, _lxc_path(lxc_path))


def resize(name, size_mb, lxc_path=None):
    """
    Enlarge or trim a container's disk to ``size_mb`` MiB; trimming below what is used is refused.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.resize ct-myapp 4096
    """
    return _call(lxc.resize, name, size_mb, _lxc_path(lxc_path))


def set_root_password(name, password_hash=None, lxc_path=None, sealed_hash=None):
    """
    Set root's password from its SHA-512 crypt hash (never the password itself).
    The controller sends ``sealed_hash`` instead: the hash sealed to this minion's
    key, so the job's load in the master's job cache does not hold it.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.set_root_password ct-myapp '$6$salt$hash...'
    """
    if sealed_hash is not None:
        password_hash = _call(sealed.open_with_minion_key, __opts__["pki_dir"], sealed_hash)
    return _call(inside.set_root_password, name, password_hash, _lxc_path(lxc_path))


def authorize_key(name, public_key, lxc_path=None):
    """
    Let an OpenSSH public key log in as root in the container.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.authorize_key ct-myapp 'ssh-ed25519 AAAA... corpus'
    """
    return _call(inside.authorize_key, name, public_key, _lxc_path(lxc_path))


def host_keys(name, lxc_path=None):
    """
    The container's SSH host public keys (``"ssh-ed25519 AAAA..."`` lines), for SSHFP records.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.host_keys ct-myapp
    """
    return _call(inside.host_keys, name, _lxc_path(lxc_path))


def attach(name, cmd, lxc_path=None):
    """
    Run a shell command in a running container: ``{retcode, stdout, stderr}``.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.attach ct-myapp 'systemctl is-system-running'
    """
    return _call(inside.attach, name, cmd, _lxc_path(lxc_path))


def map_port(external_port, address, internal_port=22, protocol="tcp", table=None, state_dir=None):
    """
    NAT the node's ``external_port`` to ``address:internal_port``. Idempotent; a port
    mapped elsewhere is refused.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.map_port 40010 10.77.0.10 22
    """
    return _call(
        nat.map_port, external_port, address, internal_port, protocol, _table(table), _state_dir(state_dir)
    )


def unmap_port(external_port, protocol="tcp", table=None, state_dir=None):
    """
    Remove the NAT of ``external_port``; an unmapped port is fine.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.unmap_port 40010
    """
    return _call(nat.unmap_port, external_port, protocol, _table(table), _state_dir(state_dir))


def ports(table=None):
    """
    Every NATed port of the node.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.ports
    """
    return _call(nat.ports, _table(table))


def add_route(domain, address, port, state_dir=None):
    """
    Route HTTP for ``domain`` and ``*.domain`` on the node's proxy to ``address:port``.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.add_route myapp.corpus.test 10.77.0.10 80
    """
    return _call(proxy.add_route, domain, address, port, _state_dir(state_dir))


def remove_route(domain, state_dir=None):
    """
    Stop routing ``domain``; an unknown domain is fine.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.remove_route myapp.corpus.test
    """
    return _call(proxy.remove_route, domain, _state_dir(state_dir))


def routes(state_dir=None):
    """
    The proxy's routes: ``[{domain, address, port}]``.

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.routes
    """
    return _call(proxy.routes, _state_dir(state_dir))


def install_minion(name, master, minion_id, wheelhouse, lxc_path=None, publish_port=None, master_port=None,
                   public_key=None, sealed_private_key=None, sync_modules=True):
    """
    Install corpus and a salt-minion (from the node's ``wheelhouse``) in a running container,
    pointed at ``master`` as ``minion_id``, and start it. A container cloned from a golden
    image baked from this wheelhouse already has them: then nothing is installed. With
    ``public_key`` and ``sealed_private_key`` (the private key sealed to this minion's key)
    the minion starts with that key pair, which the master accepted in advance. Returns
    ``{minion_id, fingerprint, public_key, path}``. ``sync_modules`` False: the minion's
    highstates do not ask the master for custom modules (it serves none).

    CLI Example:

    .. code-block:: bash

        salt node1 mc_lxc.install_minion ct-myapp 10.0.0.1 myapp-staging /srv/corpus/wheelhouse
    """
    private_key = None
    if sealed_private_key is not None:
        private_key = _call(sealed.open_with_minion_key, __opts__["pki_dir"], sealed_private_key)
    return _call(
        minion.install_minion,
        name,
        master,
        minion_id,
        wheelhouse,
        _lxc_path(lxc_path),
        publish_port,
        master_port,
        public_key=public_key,
        private_key=private_key,
        sync_modules=sync_modules,
    )
