"""The console's pure parts: board rows and states, the region map and the chart."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import DEMO, T0
from tests.factories import person
from warnbot.console import boardview, svg
from warnbot.model import Request, Tier
from warnbot.regions import load_tree
from warnbot.store.accounts import AckRow

TREE = load_tree(DEMO / "regions.toml")


def _request(
    i: int, key: str, tier: Tier = Tier.VILLAGE, confirmed_after_s: float | None = None
) -> Request:
    return Request(
        id=i,
        incident_id=1,
        responder_key=key,
        tier=tier,
        reply_code="1",
        status="confirmed" if confirmed_after_s is not None else "pending",
        sent_at=T0,
        deadline=T0 + timedelta(seconds=600),
        confirmed_at=T0 + timedelta(seconds=confirmed_after_s)
        if confirmed_after_s is not None
        else None,
    )


def test_each_person_is_confirmed_late_pending_silent_or_unreachable() -> None:
    people = {
        "a": person("a", region="449901001001", phone="+8617000000001"),
        "b": person("b", region="449901001002", phone="+8617000000002"),
        "c": person("c", region="449901002001", phone="+8617000000003"),
        "d": person("d", region="449901002002", phone="+8617000000004"),
        "e": person("e", region="449901003001", phone="+8617000000005"),
    }
    requests = [
        _request(1, "a", confirmed_after_s=60),
        _request(2, "b", confirmed_after_s=900),
        _request(3, "c"),
        _request(4, "d"),
        _request(5, "e"),
    ]
    acks = [AckRow(1, "sms", "1", False, T0 + timedelta(seconds=60))]
    failures = {"e": {"+8617000000005"}}
    view = boardview.build(requests, people, acks, [], failures, TREE, T0 + timedelta(seconds=700))
    states = {r.responder_key: r.state for r in view.rows}
    assert states == {
        "a": "confirmed",
        "b": "late",
        "c": "silent",
        "d": "silent",
        "e": "unreachable",
    }
    assert view.rows[0].channel == "sms" and view.rows[0].region_name == "一镇南村"
    assert [r.responder_key for r in boardview.only(view, "silent")] == ["c", "d"]
    assert view.total.answered == 2 and view.total.rate == 0.4


def test_the_map_colours_each_village_by_its_confirmation_rate() -> None:
    drawn = svg.region_map(TREE, "449901", {"449901001001": (1, 1), "449901002001": (0, 2)})
    assert drawn is not None
    shapes = {s.code: s for s in drawn.shapes}
    assert set(shapes) == {
        "449901001001",
        "449901001002",
        "449901002001",
        "449901002002",
        "449901003001",
    }
    assert shapes["449901001001"].fill == "#1a9850"  # everyone answered: green
    assert shapes["449901002001"].fill == "#cb181d"  # nobody answered: red
    assert shapes["449901003001"].fill == svg.NO_DATA and shapes["449901003001"].rate is None
    assert all(s.path.startswith("M") and s.path.endswith("Z") for s in drawn.shapes)
    assert 0 < drawn.height < drawn.width  # the county is wider than tall at 23°N


def test_a_tall_region_is_drawn_no_taller_than_the_limit() -> None:
    drawn = svg.region_map(TREE, "449901002", {})
    assert drawn is not None
    assert drawn.height <= svg.MAX_HEIGHT and drawn.width < drawn.height


def test_a_region_outside_the_tree_draws_no_map() -> None:
    assert svg.region_map(TREE, "110101", {}) is None
    assert svg.region_map(None, "449901", {}) is None


def test_the_chart_steps_up_at_each_confirmation_and_marks_each_tiers_deadline() -> None:
    requests = [
        _request(1, "a", Tier.VILLAGE, confirmed_after_s=120),
        _request(2, "b", Tier.VILLAGE),
        _request(3, "c", Tier.TOWNSHIP, confirmed_after_s=30),
    ]
    chart = svg.confirmation_chart(requests, T0, T0 + timedelta(seconds=300))
    assert chart is not None
    by_tier = {s.tier: s for s in chart.series}
    assert (by_tier[Tier.VILLAGE].answered, by_tier[Tier.VILLAGE].total) == (1, 2)
    assert by_tier[Tier.TOWNSHIP].deadline_x == chart.plot[2]  # the 600 s deadline ends the axis
    assert [label for _, label in chart.ticks] == ["0", "2", "4", "6", "8", "10"]
    assert svg.confirmation_chart([], T0, T0) is None
