"""SMS arithmetic: segments, cost and drain time before a blast."""

from __future__ import annotations

import pytest

from warnbot.sms import estimate, segments


@pytest.mark.parametrize(
    "body,parts",
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),
        ("€" * 81, 2),  # extension characters take two septets
        ("暴" * 70, 1),
        ("暴" * 71, 2),
        ("暴" * 134, 2),
        ("暴" * 135, 3),
        ("Level Ⅱ", 1),  # one non-GSM character makes the whole text UCS-2
    ],
)
def test_segments_follow_gsm7_and_ucs2_limits(body: str, parts: int) -> None:
    assert segments(body) == parts


def test_a_300000_message_blast_at_100_per_second_takes_50_minutes() -> None:
    blast = estimate(
        300_000,
        ["【提示】" + "台风" * 20] * 10,
        rate_per_s=100,
        per_segment=False,
        price_per_segment=0.045,
    )
    assert blast.drain_s == 3000
    assert blast.segments == 300_000 and blast.cost == pytest.approx(13_500)
    assert "50.0 分钟" in blast.line("¥")


def test_a_per_segment_limit_counts_segments() -> None:
    two_parts = "暴" * 100
    assert estimate(100, [two_parts], rate_per_s=1, per_segment=True).drain_s == 200


def test_without_a_limit_there_is_no_drain_time() -> None:
    assert estimate(5, [], rate_per_s=None, per_segment=False).drain_s is None
