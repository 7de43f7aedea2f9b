"""Local networking helpers shared by the stages that start process groups."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (a rendezvous port, so concurrent runs do not collide
    on a fixed one such as 29500). Not reserved: bind it soon."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
