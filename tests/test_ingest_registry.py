"""Tests for warnbot.ingest: the FORMATS registry, sniffing, to_json, and the sample copies."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warnbot.errors import ParseError
from warnbot.ingest import FORMATS, atom, cap, ea, generic, geojson, sniff, to_json, usgs
from warnbot.model import Observation

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).parent / "data" / "samples"
DEMO_FEED = ROOT / "config" / "demo" / "feed" / "rainstorm_orange.xml"
COPIED = ("atom", "geojson", "gauges")
EXPECTED = {"cap": "cap", "atom": "atom", "geojson": "geojson", "usgs": "usgs", "ea": "ea"}


def expected_format(path: Path) -> str:
    if path.parent.name == "gauges":
        return path.name.split("_")[0]
    if path.parent.name == "bad":
        return "atom" if ".atom." in path.name else "cap"
    return EXPECTED[path.parent.name]


ALL_SAMPLES = sorted(p for p in SAMPLES.rglob("*") if p.suffix in (".xml", ".json"))


def test_sample_copies_are_byte_identical_to_the_provenance_table() -> None:
    table = (SAMPLES / "PROVENANCE.md").read_text(encoding="utf-8")
    rows = dict(
        re.findall(
            r"^\| `((?:atom|geojson|gauges)/[^`]+)` \|.*\| \d+ \| `([0-9a-f]{16})` \|", table, re.M
        )
    )
    copied = sorted(f"{p.parent.name}/{p.name}" for d in COPIED for p in (SAMPLES / d).iterdir())
    assert sorted(rows) == copied
    for name, digest in rows.items():
        assert hashlib.sha256((SAMPLES / name).read_bytes()).hexdigest()[:16] == digest, name


def test_formats_names_each_parser_once() -> None:
    parsers = [cap.parse, atom.parse, geojson.parse, usgs.parse, ea.parse, generic.parse]
    assert list(FORMATS) == ["cap", "atom", "geojson", "usgs", "ea", "json"]
    assert list(FORMATS.values()) == parsers


# --- sniffing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_is_sniffed_as_its_format(path: Path) -> None:
    assert sniff(path.read_bytes()) == expected_format(path)


@pytest.mark.parametrize(
    "path", [p for p in ALL_SAMPLES if p.parent.name != "bad"], ids=lambda p: p.name
)
def test_every_good_sample_parses_with_the_sniffed_format(path: Path) -> None:
    data = path.read_bytes()
    assert FORMATS[sniff(data)](data) is not None


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (DEMO_FEED.read_bytes(), "cap"),  # a comment precedes the root
        (b'\xef\xbb\xbf\n <?xml version="1.0"?>\n<cap:alert xmlns:cap="x"/>', "cap"),
        (b'<!DOCTYPE rss [<!ENTITY x "y">]><rss/>', "atom"),  # atom.parse then refuses the DTD
        (b"<!-- <alert> in a comment --><feed/>", "atom"),
        (b'{"type": "Feature", "properties": {}}', "geojson"),
        (b'{"items": [], "meta": {}}', "ea"),
        (b'{"data": {"readings": []}}', "json"),
        (b" [1, 2]", "json"),
    ],
)
def test_sniff_reads_the_root_element_or_the_json_keys(data: bytes, fmt: str) -> None:
    assert sniff(data) == fmt


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "neither XML nor JSON"),
        (b"hello", "neither XML nor JSON: starts with b'hello'"),
        (b"<html><body>502</body></html>", "XML root <html> is none of CAP <alert>"),
        (b"<?xml version='1.0'?>", "neither XML nor JSON"),
        (b"< alert>", "XML without a root element"),
        (b'{"type": ', "not valid JSON"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_sniff_refuses_what_no_parser_reads(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=re.escape(message)):
        sniff(data)


# --- to_json ------------------------------------------------------------------------------------


def test_warning_to_json_is_one_flat_json_ready_object() -> None:
    obj = to_json(cap.parse(DEMO_FEED.read_bytes()))
    assert json.loads(json.dumps(obj, ensure_ascii=False)) == obj
    assert (obj["kind"], obj["identifier"], obj["sent"]) == (
        "warning",
        "44990141600000_20260815061500_1",
        "2026-08-14T22:15:00+00:00",
    )
    assert (obj["colour"], obj["event_type"], obj["issuer_region"]) == ("orange", "11B03", "449901")
    assert obj["areas"] == [
        {
            "description": "示例县",
            "geocodes": [["行政区划代码", "449901"]],
            "polygons": [],
            "circles": [],
        }
    ]
    assert obj["expires"] is None and obj["references"] == []


def test_observation_to_json_carries_kind_and_iso_time() -> None:
    reading = Observation(
        "ea:E21836", "stage", 0.081, "m", datetime(2022, 10, 8, 6, 30, tzinfo=UTC)
    )
    assert to_json(reading) == {
        "kind": "observation",
        "station": "ea:E21836",
        "quantity": "stage",
        "value": 0.081,
        "unit": "m",
        "time": "2022-10-08T06:30:00+00:00",
        "station_name": "",
        "region_code": "",
        "source": "",
    }


def test_to_json_refuses_anything_else() -> None:
    with pytest.raises(TypeError, match="not Entry"):
        to_json(atom.Entry(id="e"))  # type: ignore[arg-type]


# --- arbitrary input ------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=2048) | st.sampled_from([b"<", b"{", b"[", b"<!--", b"<?x"]))
def test_arbitrary_bytes_sniff_to_a_format_or_raise_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        assert sniff(data) in FORMATS
