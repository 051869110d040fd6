"""Once started, the daemon hides its start-up heap from the garbage collector, so a full
collection no longer stalls the event loop (and the rate-limited sends on it) for ~100 ms."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from warnbot.daemon import freeze_startup_heap


@pytest.fixture
def frozen() -> Iterator[None]:
    freeze_startup_heap()
    try:
        yield
    finally:
        gc.unfreeze()  # the rest of the suite collects as usual


def test_the_start_up_heap_is_out_of_the_collectors_sight(frozen: None) -> None:
    assert gc.get_freeze_count() > 10_000  # modules, settings: everything made so far


def test_cycles_made_after_start_up_are_still_collected(frozen: None) -> None:
    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2
