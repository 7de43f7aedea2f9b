"""core.net.free_port: one home for the rendezvous port of the stages' process groups."""

from __future__ import annotations

import socket

from tokenskip.core.net import free_port


def test_free_port_can_be_bound_on_localhost() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_the_stages_and_the_tests_share_it() -> None:
    from tests.pipeline import flow_helpers
    from tokenskip.base_model import parallel
    from tokenskip.finetune import distributed

    assert parallel.free_port is distributed.free_port is flow_helpers.free_port is free_port
