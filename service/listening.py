"""The service's listening socket, bound before the application starts.

``supernas serve`` binds its port first, so that a port already in use fails at once, before the
start-up recovers interrupted searches or the dispatcher runs any, and so that no process of the
embedded Ray cluster, which starts with the application and opens ports of its own, can take it.
"""

from __future__ import annotations

import socket


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (IPv4 or IPv6, as ``host`` resolves); raises ``OSError``
    (``EADDRINUSE`` for a port in use)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart reuses it at once
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock
