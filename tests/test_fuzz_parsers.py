"""Fuzz: the SMS-reply and roster parsers take anything and either read it or say
clearly why not; they never crash. (CAP, Atom and the gauge formats have
their own hypothesis tests in tests/test_ingest_*.py.)"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from warnbot import acks, rosters
from warnbot.errors import ConfigError, ParseError
from warnbot.ingest import cap, usgs

HEADER = "编号,姓名,层级,行政区划代码,手机号码,角色,语言,上级编号\n"
cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(st.text(max_size=300))
def test_any_sms_text_is_read_as_a_reply_or_refused_without_error(text: str) -> None:
    reply = acks.parse_reply(text)
    if reply is not None:
        assert reply.code is None or (reply.code.isdigit() and int(reply.code) < 1000)


@given(st.integers(0, 999), st.text(max_size=100))
def test_a_code_then_any_report_keeps_the_code(code: int, report: str) -> None:
    reply = acks.parse_reply(f"{code} {report}")
    assert reply is not None and reply.code == str(code)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(cells, min_size=0, max_size=9), max_size=8))
def test_any_roster_spreadsheet_loads_or_names_its_bad_rows(rows: list[list[str]]) -> None:
    text = HEADER + "\n".join(",".join('"' + c.replace('"', '""') + '"' for c in r) for r in rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "roster.csv"
        path.write_text(text, encoding="utf-8")
        try:
            people = rosters.load(path)
        except ConfigError as e:
            assert e.problems and all(p.startswith(str(path)) for p in e.problems)
        else:
            assert all(p.key and p.phones for p in people)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_as_cap_parse_or_raise_a_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        cap.parse(data)


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_any_json_as_a_gauge_feed_parses_or_raises_a_parse_error(value: object) -> None:
    with contextlib.suppress(ParseError):
        list(usgs.parse(json.dumps(value).encode()))
