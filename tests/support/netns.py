"""A test host in a network namespace: its own address, routes and sshd.

``NetnsHost(name, host_addr, ns_addr, workdir=None)`` makes namespace ``name``
joined to this machine by a veth pair (``host_addr`` on the host side, e.g.
``10.78.0.1/24``; ``ns_addr`` inside, e.g. ``10.78.0.2/24``, with the default
route through the host side) and runs a private sshd on ``ns_addr`` port 22
with its own host keys, letting root in with a key made for the test
(``key_path``). Everything it starts runs inside the namespace; ``close()``
kills those processes and removes the namespace (and so the veth pair).

The filesystem is the host's: what runs inside must use its own paths (a node
linked there gets its own ``prefix`` and ``lxc_path``).
"""

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


# `ip netns exec` gives its command a fresh /sys, without the cgroup hierarchies
# LXC needs to start containers: mount the ones the host has (PID 1's mounts)
# again before starting sshd, so a node minion started over SSH can run LXC.
MIRROR_CGROUPS = r"""
mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
while read -r src dst type opts _; do
  case "$dst" in /sys/fs/cgroup/*) ;; *) continue ;; esac
  [ "$type" = cgroup ] || continue
  mkdir -p "$dst"
  keep=$(echo "$opts" | tr , '\n' | grep -vE '^(rw|ro|relatime|nosuid|nodev|noexec)$' | paste -sd, -)
  mount -t cgroup -o "${keep:-none}" "$src" "$dst"
done < /proc/1/mounts
exec "$@"
"""


def _run(*command, check=True):
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=60)


class NetnsHost:
    def __init__(self, name, host_addr, ns_addr, workdir=None):
        self.name = name
        self.host_interface = ipaddress.ip_interface(host_addr)
        self.ns_interface = ipaddress.ip_interface(ns_addr)
        self.address = str(self.ns_interface.ip)
        self.host_address = str(self.host_interface.ip)
        self.ssh_port = 22
        self.workdir = os.path.abspath(str(workdir or tempfile.mkdtemp(prefix="netns-")))
        self.key_path = os.path.join(self.workdir, "id_ed25519")
        # Interface names are at most 15 characters.
        self.veth_host = "vh-" + name[:11]
        self.veth_ns = "vn-" + name[:11]
        self.etc_dir = os.path.join("/etc/netns", name)
        os.makedirs(self.workdir, exist_ok=True)
        try:
            self._make_network()
            self._start_sshd()
        except BaseException:
            self.close()
            raise

    def _make_network(self):
        # `ip netns exec` mounts this over /etc/resolv.conf. The host's resolver is
        # out of reach (nothing NATs the namespace's traffic): ask the host side,
        # which refuses at once, rather than wait for timeouts on every lookup.
        os.makedirs(self.etc_dir, exist_ok=True)
        with open(os.path.join(self.etc_dir, "resolv.conf"), "w", encoding="utf-8") as fh:
            fh.write("nameserver {}\n".format(self.host_address))
        _run("ip", "netns", "add", self.name)
        _run("ip", "link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_ns)
        _run("ip", "link", "set", self.veth_ns, "netns", self.name)
        _run("ip", "addr", "add", str(self.host_interface), "dev", self.veth_host)
        _run("ip", "link", "set", self.veth_host, "up")
        self.exec("ip link set lo up && ip addr add {} dev {} && ip link set {} up && "
                  "ip route add default via {}".format(self.ns_interface, self.veth_ns, self.veth_ns,
                                                       self.host_address), check=True)
        _run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")

    def _start_sshd(self):
        host_key = os.path.join(self.workdir, "ssh_host_ed25519_key")
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "corpus-test", "-f", self.key_path)
        authorized = os.path.join(self.workdir, "authorized_keys")
        with open(self.key_path + ".pub", encoding="utf-8") as src, \
                open(authorized, "w", encoding="utf-8") as dest:
            dest.write(src.read())
        os.chmod(authorized, 0o600)
        self.sshd_log = os.path.join(self.workdir, "sshd.log")
        self.sshd_config = os.path.join(self.workdir, "sshd_config")
        with open(self.sshd_config, "w", encoding="utf-8") as fh:
            fh.write("\n".join([
                "ListenAddress {}".format(self.address),
                "Port {}".format(self.ssh_port),
                "HostKey {}".format(host_key),
                "AuthorizedKeysFile {}".format(authorized),
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PidFile {}".format(os.path.join(self.workdir, "sshd.pid")),
                "Subsystem sftp {}".format(SFTP_SERVER),
                "",
            ]))
        # sshd refuses to start without its privilege separation directory.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        _run("ip", "netns", "exec", self.name, "sh", "-c", MIRROR_CGROUPS, "sh",
             SSHD, "-f", self.sshd_config, "-E", self.sshd_log)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection((self.address, self.ssh_port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("sshd in netns {} did not listen on {}:{}".format(
                        self.name, self.address, self.ssh_port))
                time.sleep(0.1)

    def exec(self, command, check=False, timeout=120):
        """Run ``command`` (a shell line) inside the namespace."""
        return subprocess.run(["ip", "netns", "exec", self.name, "sh", "-c", command],
                              capture_output=True, text=True, check=check, timeout=timeout)

    def pids(self):
        found = _run("ip", "netns", "pids", self.name, check=False)
        return [int(pid) for pid in found.stdout.split()] if found.returncode == 0 else []

    def close(self):
        """Kill every process in the namespace, then remove it (its veth pair goes with it)."""
        deadline = time.monotonic() + 10
        while True:
            pids = self.pids()
            if not pids or time.monotonic() > deadline:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        _run("ip", "netns", "del", self.name, check=False)
        _run("ip", "link", "del", self.veth_host, check=False)
        shutil.rmtree(self.etc_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
