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


TWO_PARTS = (
    "【提示短信】" + "台风“示例”将于今夜登陆，请居民减少外出，远离危险区域。" * 3
)  # 86 chars


def test_a_blast_of_one_text_costs_its_segments_and_drains_at_the_effective_rate() -> None:
    from warnbot.settings import RateLimit
    from warnbot.sms import cost_for

    limit = RateLimit(rate_per_s=100, per_segment=True, price_per_segment=0.05)
    guess = cost_for({TWO_PARTS: 300_000}, limit)
    assert (guess.messages, guess.segments) == (300_000, 600_000)
    assert guess.cost == pytest.approx(30_000)
    assert guess.drain_s == pytest.approx(600_000 / limit.effective_per_s)  # ≈ 101.5 min


def test_mixed_texts_are_counted_exactly_and_a_longer_queue_extends_the_mix() -> None:
    from warnbot.sms import cost_of

    exact = cost_of(["短", TWO_PARTS, TWO_PARTS], rate_per_s=None, per_segment=True)
    assert (exact.messages, exact.segments, exact.drain_s) == (3, 5, None)
    extended = cost_of({"短": 1, TWO_PARTS: 1}, rate_per_s=1, per_segment=False, total=10)
    assert (extended.messages, extended.segments, extended.drain_s) == (10, 15, 10)
