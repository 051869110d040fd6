"""Tests for the pure half of warnbot.acks: reading an SMS answer and choosing its request.

(The store-backed intake functions are tested with the store.)
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import T0
from warnbot.acks import Reply, choose, parse_reply
from warnbot.model import Request, Tier


def request(request_id: int, code: str) -> Request:
    return Request(
        id=request_id,
        incident_id=request_id,
        responder_key="V01",
        tier=Tier.VILLAGE,
        reply_code=code,
        status="pending",
        sent_at=T0,
        deadline=T0 + timedelta(minutes=30),
    )


# --- parse_reply ---------------------------------------------------------------------------


def test_a_digit_is_a_reply_code() -> None:
    assert parse_reply("1") == Reply("1", "")


def test_a_full_width_digit_is_read_as_its_ascii_code() -> None:
    assert parse_reply("１") == Reply("1", "")


def test_a_code_followed_by_a_report_keeps_both() -> None:
    assert parse_reply("2 已转移12户30人") == Reply("2", "已转移12户30人")


@pytest.mark.parametrize(
    "text",
    [
        "1 已通知各村",
        "1，已通知各村",
        "1、已通知各村",
        "1:已通知各村",
        "１。已通知各村",
        "1已通知各村",
    ],
)
def test_the_separator_between_code_and_report_is_dropped(text: str) -> None:
    assert parse_reply(text) == Reply("1", "已通知各村")


def test_a_report_may_span_several_lines() -> None:
    assert parse_reply("3\n已到岗\n已转移5户") == Reply("3", "已到岗\n已转移5户")


def test_leading_zeros_in_a_code_are_dropped() -> None:
    assert parse_reply("02") == Reply("2", "")


def test_surrounding_whitespace_is_ignored() -> None:
    assert parse_reply("  1 \n") == Reply("1", "")


def test_a_number_of_four_digits_is_not_a_code() -> None:
    assert parse_reply("1234") is None


def test_shou_dao_is_a_bare_acknowledgement() -> None:
    assert parse_reply("收到") == Reply(None, "")


def test_shou_dao_followed_by_a_report_keeps_the_report_without_the_comma() -> None:
    assert parse_reply("收到，已转移") == Reply(None, "已转移")


def test_yi_shou_dao_is_a_bare_acknowledgement() -> None:
    assert parse_reply("已收到！") == Reply(None, "")


@pytest.mark.parametrize("text", ["OK", "ok", "Ok", "ok!", "OK.", "okay", "Yes", "y", "received"])
def test_english_acknowledgements_are_read_in_any_case(text: str) -> None:
    assert parse_reply(text) == Reply(None, "")


def test_ok_followed_by_a_report_keeps_the_report() -> None:
    assert parse_reply("ok, on my way") == Reply(None, "on my way")


def test_full_width_ok_is_an_acknowledgement() -> None:
    assert parse_reply("ＯＫ") == Reply(None, "")


@pytest.mark.parametrize(
    "text", ["okra", "yesterday", "yellow", "hello", "", "   ", "？", "不知道"]
)
def test_text_that_is_neither_code_nor_acknowledgement_is_none(text: str) -> None:
    assert parse_reply(text) is None


# --- choose --------------------------------------------------------------------------------


def test_a_bare_acknowledgement_answers_the_only_open_request() -> None:
    only = request(1, "11")
    assert choose([only], Reply(None)) is only
    assert choose([only], Reply("1")) is only  # a bare "1" is an acknowledgement too


def test_a_bare_acknowledgement_with_several_open_requests_is_ambiguous() -> None:
    assert choose([request(1, "11"), request(2, "12")], Reply(None)) is None
    assert choose([request(1, "11"), request(2, "12")], Reply("1")) is None


def test_a_bare_1_never_picks_a_request_asked_with_code_1_before_codes_began_at_11() -> None:
    legacy, current = request(1, "1"), request(2, "11")
    assert choose([legacy, current], Reply("1")) is None
    assert choose([legacy, current], Reply("11")) is current


def test_a_bare_acknowledgement_with_no_open_request_answers_nothing() -> None:
    assert choose([], Reply(None)) is None


def test_an_explicit_code_picks_the_request_with_that_code() -> None:
    first, second, third = request(1, "11"), request(2, "12"), request(3, "13")
    assert choose([first, second, third], Reply("12")) is second
    assert choose([first, second, third], Reply("13", "已到岗")) is third


def test_a_code_read_from_a_full_width_reply_picks_its_request() -> None:
    first, second = request(1, "11"), request(2, "12")
    reply = parse_reply("１２ 已转移12户30人")
    assert reply is not None
    assert choose([first, second], reply) is second


def test_an_unknown_code_with_several_open_requests_is_none() -> None:
    assert choose([request(1, "11"), request(2, "12")], Reply("17")) is None


def test_an_unknown_code_with_one_open_request_answers_it() -> None:
    only = request(1, "11")
    assert choose([only], Reply("17")) is only


def test_a_code_with_no_open_request_answers_nothing() -> None:
    assert choose([], Reply("1")) is None
