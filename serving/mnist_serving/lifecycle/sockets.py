"""The listening sockets the gateway serves: bound here, with one message when a port is taken."""

from __future__ import annotations

import os
import socket

from mnist_serving.errors import StartupError


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: a free port); IPv6 when the host is one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server(
            (host, port),
            family=family,
            backlog=2048,
            reuse_port=reuse_port,
            dualstack_ipv6=dual_stack(host),
        )
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise StartupError(f"cannot listen on {host}:{port} ({reason})") from None
    sock.set_inheritable(True)
    return sock


def dual_stack(host: str) -> bool:
    """``::`` means every address, IPv4 ones too (as gRPC binds it), where the OS allows."""
    return host == "::" and socket.has_dualstack_ipv6()


def reserve_port(host: str, port: int) -> socket.socket:
    """Hold ``host:port`` (a free one for 0) for worker processes that will listen on it with
    ``SO_REUSEPORT``: bound with that option but not listening, so no connection waits on it."""
    try:
        if port:
            # SO_REUSEPORT would let us join another server that set it too (another
            # gateway's workers, say): first prove the port is free, without it. With
            # SO_REUSEADDR, as every server binds: the connections a stopped gateway closed
            # linger in TIME-WAIT for a minute and must not keep its successor out, while a
            # socket that listens on the port, or holds it as this one will, still does.
            with _socket_like_the_workers(host) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((host, port))
        sock = _socket_like_the_workers(host)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise StartupError(f"cannot listen on {host}:{port} ({reason})") from None
    return sock


def _socket_like_the_workers(host: str) -> socket.socket:
    """A TCP socket of the family (and, for IPv6, the dual-stack choice) the workers bind."""
    if ":" not in host:
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack(host) else 1)
    return sock
