"""The start-up runs with the cyclic garbage collector paused, and never a long run without it."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from lead_conversion_prediction.utils import start_up


@pytest.fixture
def collector() -> Iterator[None]:
    """Leave the collector as the test found it: on, nothing frozen."""
    yield
    start_up.resume_collector()
    gc.unfreeze()
    gc.enable()


def test_the_collector_is_paused_until_the_start_up_is_over(collector: None) -> None:
    start_up.pause_collector()
    assert not gc.isenabled()
    made = [[index] for index in range(1000)]  # objects of the start-up
    start_up.resume_collector()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(made), "what start-up made is out of the collector's way"
    start_up.resume_collector()  # once only: a second call changes nothing
    assert gc.isenabled()


def test_a_command_that_never_ends_its_start_up_gets_the_collector_back(
    collector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(start_up, "START_UP_SECONDS", 0.05)
    start_up.pause_collector()
    assert not gc.isenabled()
    back = threading.Event()
    for _ in range(200):  # wait on the condition, for at most 10 s
        if gc.isenabled():
            break
        back.wait(0.05)
    assert gc.isenabled()


def test_resuming_a_collector_never_paused_changes_nothing(collector: None) -> None:
    frozen = gc.get_freeze_count()
    start_up.resume_collector()
    assert gc.isenabled() and gc.get_freeze_count() == frozen
