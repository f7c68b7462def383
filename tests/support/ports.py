"""Free ports on the loopback address, for the servers a test starts."""

import contextlib
import socket

LOOPBACK = "127.0.0.1"


def free_port(udp_too=False, host=LOOPBACK):
    """A port nothing listens on now (TCP, and UDP as well when asked) on ``host``."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = tcp.getsockname()[1]
            if not udp_too:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port


def free_ports(count, host=LOOPBACK):
    """``count`` distinct free TCP ports (all held open until every one is found)."""
    with contextlib.ExitStack() as probes:
        ports = []
        for _ in range(count):
            probe = probes.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind((host, 0))
            ports.append(probe.getsockname()[1])
        return ports
