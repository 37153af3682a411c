"""The ports the tests' servers get: never one the kernel may give an outgoing connection, and
never one another pytest-xdist worker gets."""

from __future__ import annotations

import socket

import pytest

from tests import support


def test_ports_are_below_the_ephemeral_range_and_differ_between_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    floor = support._ephemeral_floor()
    handed: dict[str, set[int]] = {}
    for worker in ("gw0", "gw1", "gw2"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        monkeypatch.setattr(support, "_handed_out", [])
        handed[worker] = {support.free_port() for _ in range(5)}
    ports = set().union(*handed.values())
    assert len(ports) == 15, "each call and each worker gets a port of its own"
    assert all(1024 <= port < floor for port in ports)


def test_a_port_something_listens_on_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw5")
    monkeypatch.setattr(support, "_handed_out", [])
    taken = support.free_port()
    monkeypatch.setattr(support, "_handed_out", [])
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", taken))
        listener.listen()
        assert support.free_port() == taken + 1
