"""Tests for warnbot.links: short signed tokens that name one request."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warnbot.links import new_secret, sign, verify

SECRET = "test-link-secret-not-a-real-one"
URL_SAFE = re.compile(r"[0-9a-z]+\.[A-Za-z0-9_-]{12}")


@pytest.mark.parametrize("request_id", [0, 1, 35, 36, 1295, 1296, 999_999, 2**31 - 1, 2**63 - 1])
def test_a_signed_token_verifies_to_its_request_id(request_id: int) -> None:
    assert verify(sign(request_id, SECRET), SECRET) == request_id


@given(st.integers(0, 2**63 - 1))
def test_every_64_bit_request_id_round_trips(request_id: int) -> None:
    assert verify(sign(request_id, SECRET), SECRET) == request_id


def test_a_token_is_the_id_in_base_36_a_dot_and_a_12_character_url_safe_mac() -> None:
    token = sign(1295, SECRET)
    assert token.startswith("zz.")
    assert URL_SAFE.fullmatch(token)


@pytest.mark.parametrize("request_id", [0, 7, 46_655, 46_656, 999_999])
def test_a_token_for_an_id_below_a_million_is_under_20_characters(request_id: int) -> None:
    assert len(sign(request_id, SECRET)) < 20


def test_tokens_for_different_ids_differ() -> None:
    assert sign(1, SECRET).split(".")[1] != sign(2, SECRET).split(".")[1]


def test_a_token_signed_with_another_secret_does_not_verify() -> None:
    assert verify(sign(42, new_secret()), SECRET) is None


def test_new_secrets_are_long_and_never_repeat() -> None:
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(s) >= 40 for s in secrets)


@pytest.mark.parametrize("position", range(12))
def test_a_token_with_any_mac_character_changed_does_not_verify(position: int) -> None:
    token = sign(42, SECRET)
    head, mac = token.split(".")
    changed = "A" if mac[position] != "A" else "B"
    tampered = f"{head}.{mac[:position]}{changed}{mac[position + 1 :]}"
    assert verify(tampered, SECRET) is None


def test_a_token_with_its_id_changed_does_not_verify() -> None:
    mac = sign(42, SECRET).split(".")[1]
    assert verify(f"{sign(43, SECRET).split('.')[0]}.{mac}", SECRET) is None


def test_a_token_with_its_mac_cut_short_or_extended_does_not_verify() -> None:
    token = sign(42, SECRET)
    assert verify(token[:-1], SECRET) is None
    assert verify(token + "x", SECRET) is None


def test_a_token_whose_id_is_spelt_differently_does_not_verify() -> None:
    head, mac = sign(10, SECRET).split(".")
    assert head == "a"
    assert verify(f"A.{mac}", SECRET) is None  # upper case
    assert verify(f"0a.{mac}", SECRET) is None  # leading zero


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "..",
        "-5.x",
        "+5.x",
        " 5.x",
        "zz",
        "zz.",
        ".abcdefghijkl",
        "1.abc.def",
        "５.abcdefghijkl",
        "1.ｍａｃ",
        "١٢.abcdefghijkl",
        "1_0.abcdefghijkl",
        "z" * 14 + ".abcdefghijkl",
        "9" * 5000 + ".abcdefghijkl",
        "z" * 100_000,
    ],
)
def test_a_malformed_token_verifies_to_none(token: str) -> None:
    assert verify(token, SECRET) is None


def test_a_correctly_signed_id_too_large_for_any_database_is_refused() -> None:
    assert verify(sign(36**14, SECRET), SECRET) is None


@given(st.text())
def test_arbitrary_text_never_raises_and_never_verifies(text: str) -> None:
    assert verify(text, SECRET) is None
