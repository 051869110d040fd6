"""Tests for warnbot.log: phone masking, secret redaction, and the JSON log line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from warnbot import log


@pytest.fixture
def restore_structlog() -> Iterator[None]:
    """configure() is global: put back whatever was configured before the test."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


# --- mask_phone ----------------------------------------------------------------------------


def test_an_e164_chinese_mobile_keeps_country_code_prefix_and_last_four() -> None:
    assert log.mask_phone("+8613812345678") == "+86138****5678"


def test_a_bare_chinese_mobile_keeps_its_first_three_and_last_four_digits() -> None:
    assert log.mask_phone("13812345678") == "138****5678"


def test_a_us_number_hides_at_least_four_digits() -> None:
    masked = log.mask_phone("+15005550006")
    assert masked == "+150****0006"


def test_every_phone_in_a_sentence_is_masked_and_the_rest_kept() -> None:
    text = "sent to +8613812345678 and 13987654321, then 13800138000."
    assert log.mask_phone(text) == "sent to +86138****5678 and 139****4321, then 138****8000."


def test_a_short_international_number_keeps_only_its_first_three_characters() -> None:
    assert log.mask_phone("call +1234567 now") == "call +12**** now"


@pytest.mark.parametrize(
    "text",
    [
        "incident 42 request 1296",
        "region 449901001001",
        "region 130102001001",  # a 12-digit code starting 13 is not an 11-digit mobile
        "2026-08-15T06:15:00+00:00",
        "12345678901",  # 11 digits, but no mobile starts 12
        "138123456789",  # 12 digits
    ],
)
def test_numbers_that_are_not_phones_are_left_alone(text: str) -> None:
    assert log.mask_phone(text) == text


def mask_hides_enough(number: str) -> bool:
    masked = log.mask_phone(number)
    shown = sum(c.isdigit() for c in masked)
    return "****" in masked and sum(c.isdigit() for c in number) - shown >= 4


@pytest.mark.parametrize(
    "number",
    [
        "+8613812345678",
        "13812345678",
        "+15005550006",
        "+447700900123",
        "+85291234567",
        "+12345678901234",
    ],
)
def test_at_least_four_digits_of_any_phone_are_hidden(number: str) -> None:
    assert mask_hides_enough(number)


# --- redact --------------------------------------------------------------------------------


def test_redact_hides_the_values_of_secret_named_keys() -> None:
    event: dict[str, Any] = {
        "event": "sent",
        "auth_token": "tok",
        "password": "hunter2",
        "signature": "sig",
        "X-Twilio-Signature": "sig2",
        "link_secret": "ls",
        "api_key": "k",
        "token": {"nested": "value"},
    }
    out = log.redact(None, "info", event)
    assert {k: v for k, v in out.items() if k != "event"} == dict.fromkeys(
        ["auth_token", "password", "signature", "X-Twilio-Signature", "link_secret", "api_key",
         "token"], "***",
    )  # fmt: skip


def test_redact_masks_phones_in_every_string_value_including_the_event() -> None:
    out = log.redact(None, "info", {"event": "reply from 13812345678", "to": "+8613812345678"})
    assert out == {"event": "reply from 138****5678", "to": "+86138****5678"}


def test_redact_leaves_other_values_as_they_are() -> None:
    event = {"event": "tick", "steps": 3, "late": True, "incident": "暴雨@449901"}
    assert log.redact(None, "info", dict(event)) == event


# --- configure -----------------------------------------------------------------------------


def test_a_json_log_line_carries_the_event_with_the_phone_masked(
    capsys: pytest.CaptureFixture[str], restore_structlog: None
) -> None:
    log.configure("json")
    log.get("warnbot.test").info("sms sent", to="+8613812345678", auth_token="tok", incident=12)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "sms sent"
    assert record["to"] == "+86138****5678"
    assert record["auth_token"] == "***"
    assert record["incident"] == 12
    assert record["level"] == "info"
    assert "timestamp" in record
    assert "13812345678" not in lines[0]
    assert "tok" not in lines[0].replace("auth_token", "")


def test_the_console_format_masks_phones_too(
    capsys: pytest.CaptureFixture[str], restore_structlog: None
) -> None:
    log.configure("console")
    log.get("warnbot.test").warning("reply", phone="13812345678")
    err = capsys.readouterr().err
    assert "138****5678" in err
    assert "13812345678" not in err


def test_events_below_the_configured_level_are_dropped(
    capsys: pytest.CaptureFixture[str], restore_structlog: None
) -> None:
    log.configure("json")
    logger = log.get("warnbot.test")
    logger.debug("noise")
    logger.info("signal")
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert events == ["signal"]


def test_auto_writes_json_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str], restore_structlog: None
) -> None:
    log.configure("auto")
    log.get("warnbot.test").info("hello")
    assert json.loads(capsys.readouterr().err)["event"] == "hello"
