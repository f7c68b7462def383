"""Whether a TCP port can be listened on."""

import socket


def port_in_use(host, port):
    """Can nothing bind ``host``:``port`` now (something listens there)?"""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False
