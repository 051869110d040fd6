"""Tests for warnbot.board: each request's state, the tally per tier, the summary line."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from tests.conftest import T0, Clock
from warnbot import drillreport, status
from warnbot.app import App
from warnbot.board import (
    NO_LONGER_ASKED,
    STATES,
    TierTally,
    asked,
    current,
    lines,
    muster,
    muster_lines,
    no_longer_asked,
    state,
    summary,
    tally,
    withdrawn,
)
from warnbot.console import boardview
from warnbot.evaluate import Transition
from warnbot.model import Level, Request, Tier

DEADLINE = T0 + timedelta(minutes=30)
_ids = iter(range(1, 10_000))


def request(
    tier: Tier = Tier.VILLAGE,
    *,
    confirmed: float | None = None,
    escalated: float | None = None,
    status: str | None = None,
) -> Request:
    """A request due at DEADLINE; times are seconds relative to the deadline."""
    confirmed_at = DEADLINE + timedelta(seconds=confirmed) if confirmed is not None else None
    escalated_at = DEADLINE + timedelta(seconds=escalated) if escalated is not None else None
    default = "confirmed" if confirmed_at else "escalated" if escalated_at else "pending"
    n = next(_ids)
    return Request(
        id=n,
        incident_id=1,
        responder_key=f"P{n}",
        tier=tier,
        reply_code="1",
        status=status or default,
        sent_at=T0,
        deadline=DEADLINE,
        confirmed_at=confirmed_at,
        escalated_at=escalated_at,
    )


def at(seconds_after_deadline: float) -> datetime:
    return DEADLINE + timedelta(seconds=seconds_after_deadline)


# --- state ---------------------------------------------------------------------------------


def test_an_answer_before_the_deadline_is_confirmed() -> None:
    assert state(request(confirmed=-60), at(3600)) == "confirmed"


def test_an_answer_exactly_at_the_deadline_is_confirmed_not_late() -> None:
    assert state(request(confirmed=0), at(3600)) == "confirmed"


def test_an_answer_after_the_deadline_is_late() -> None:
    assert state(request(confirmed=0.001), at(3600)) == "late"


def test_an_answer_after_the_superior_was_told_is_late() -> None:
    assert state(request(escalated=300, confirmed=400), at(3600)) == "late"


def test_no_answer_before_the_deadline_is_pending() -> None:
    assert state(request(), at(-1)) == "pending"


def test_no_answer_at_the_deadline_itself_is_still_pending() -> None:
    assert state(request(), at(0)) == "pending"


def test_no_answer_past_the_deadline_is_silent() -> None:
    assert state(request(), at(0.001)) == "silent"


def test_an_escalated_request_without_an_answer_is_silent() -> None:
    assert state(request(escalated=600), at(900)) == "silent"


def test_every_state_is_one_of_the_five_named() -> None:
    seen = {
        state(request(confirmed=-1), at(1)),
        state(request(confirmed=1), at(1)),
        state(request(), at(-1)),
        state(request(), at(1)),
        state(request(status="unreachable"), at(1)),
    }
    assert seen == set(STATES) == {"confirmed", "late", "pending", "silent", "unreachable"}


def test_a_person_given_up_on_is_unreachable_until_they_answer_late() -> None:
    assert state(request(status="unreachable"), at(7200)) == "unreachable"
    assert state(request(status="unreachable", confirmed=7000), at(7200)) == "late"


def test_after_an_upgrade_only_each_persons_new_request_is_counted() -> None:
    old = replace(request(Tier.VILLAGE, status="superseded"), responder_key="V01")
    new = replace(request(Tier.VILLAGE, confirmed=-5), responder_key="V01")
    other = replace(request(Tier.VILLAGE), responder_key="V02")
    assert current([new, old, other]) == [new, other]
    (row,) = tally([old, new, other], at(60))
    assert (row.total, row.confirmed, row.silent) == (2, 1, 1)


# --- after an upgrade that no longer reaches someone ---------------------------------------


def _taken_back(key: str, tier: Tier = Tier.VILLAGE, **kw: float) -> Request:
    """``key``'s ask, superseded by an upgrade whose level does not ask them again."""
    return replace(request(tier, status="superseded", **kw), responder_key=key)


def test_a_person_the_upgrade_no_longer_asks_is_no_longer_asked_not_silent() -> None:
    old = _taken_back("V01")
    assert withdrawn(old) and state(old, at(3600)) == NO_LONGER_ASKED
    assert state(old, at(-60)) == NO_LONGER_ASKED  # nor pending, before the deadline
    assert NO_LONGER_ASKED not in STATES


def test_an_answer_given_before_or_after_the_ask_was_taken_back_still_counts() -> None:
    early = _taken_back("V01", confirmed=-60)
    assert not withdrawn(early) and state(early, at(3600)) == "confirmed"
    assert state(_taken_back("V02", confirmed=60), at(3600)) == "late"


def test_persons_no_longer_asked_are_counted_apart_and_in_no_total() -> None:
    county_old = replace(request(Tier.COUNTY, status="superseded"), responder_key="X01")
    county_new = replace(request(Tier.COUNTY), responder_key="X01")  # asked again
    answered = replace(request(Tier.VILLAGE, confirmed=-5), responder_key="V01")
    gone = [_taken_back("V02"), _taken_back("V03", escalated=60)]
    rows = [county_old, county_new, answered, *gone]
    assert asked(rows) == [county_new, answered]
    assert no_longer_asked(rows) == gone
    county, village = tally(rows, at(600))
    assert (county.total, county.silent, county.no_longer_asked) == (1, 1, 0)
    assert (village.total, village.confirmed, village.silent, village.pending) == (1, 1, 0, 0)
    assert (village.no_longer_asked, village.escalated) == (2, 0)
    assert summary([county, village]) == "叫应: 1/2 confirmed, 0 escalated, 2 no longer asked"
    *_, apart = lines([county, village])
    assert apart == "不再需要 no longer asked (已告知升级 told of the upgrade): 村级 village 2"


def test_a_tier_the_upgrade_dropped_shows_nobody_to_count_and_who_was_told() -> None:
    (village,) = tally([_taken_back("V01"), _taken_back("V02")], at(600))
    assert (village.total, village.silent, village.no_longer_asked) == (0, 0, 2)
    assert summary([village]) == "叫应: 0/0 confirmed, 0 escalated, 2 no longer asked"


def test_a_board_with_nobody_taken_back_has_no_line_for_them() -> None:
    assert len(lines(tally([request(Tier.VILLAGE)], at(0)))) == 2


def test_a_person_no_longer_asked_is_not_expected_at_the_muster() -> None:
    gone = replace(_taken_back("F1"), muster_deadline=DEADLINE)
    assert muster([gone]) == []


async def test_after_an_upgrade_that_drops_villages_no_view_counts_the_villagers_silent(
    app: App, clock: Clock
) -> None:
    """Ⅱ asks every tier; Ⅰ (here) no villages. V01 answered before the upgrade, V02–V05
    did not: they are told of the upgrade, not asked, and no view calls them silent."""
    policy = app.settings.policy
    red = {t: p for t, p in policy["Ⅰ"].items() if t is not Tier.VILLAGE}
    app.settings = app.settings.model_copy(update={"policy": {**policy, "Ⅰ": red}})
    key = "暴雨@449901"
    await app.apply(Transition("open", key, "暴雨", "449901", Level.II, "橙", "t"), None, "t")
    ((incident, _),) = await app.store.open_incidents()
    assert "已确认收到" in await app.sms_reply(app.people["V01"].phones[0], "收到")
    upgrade = Transition("upgrade", key, "暴雨", "449901", Level.I, "红", "t", incident.id)
    await app.apply(upgrade, None, "t")
    now = clock.advance(3600)  # every window has passed
    requests = await app.store.requests_of(incident.id)
    gone = {"V02", "V03", "V04", "V05"}
    assert {r.responder_key for r in no_longer_asked(requests)} == gone

    *_, village = tally(requests, now)
    assert (village.total, village.confirmed, village.silent, village.no_longer_asked) == (
        1, 1, 0, 4
    )  # fmt: skip
    shown = [line.strip() for line in await status.incident_lines(app.store, incident, now)]
    assert "不再需要 no longer asked (已告知升级 told of the upgrade): 村级 village 4" in shown
    assert "叫应: 1/7 confirmed, 0 escalated, 4 no longer asked" in shown

    view = boardview.build(requests, app.people, [], [], {}, app.regions, now)
    states = {r.responder_key: r.state for r in view.rows}
    assert len(view.rows) == len(states) == 11  # each person once, re-asked or not
    assert {k for k, s in states.items() if s == NO_LONGER_ASKED} == gone
    assert (view.total.total, view.total.counts["silent"], view.total.answered) == (7, 6, 1)
    assert [g.total for g in view.tiers if g.label == "village"] == [1]

    report = drillreport.build(incident, requests, app.people, [], now)
    outcomes = {p.responder_key: p.outcome for p in report.people}
    assert {k for k, o in outcomes.items() if o == NO_LONGER_ASKED} == gone
    assert report.total is not None and report.total.total == 7
    assert report.total.counts["silent"] == 6 and report.total.answered == 1
    assert "不再需要" in drillreport.html(report)


def muster_request(
    key: str, *, confirmed: float | None = None, arrived: float | None = None
) -> Request:
    base = replace(request(confirmed=confirmed), responder_key=key)
    return replace(
        base,
        muster_deadline=DEADLINE,
        arrived_at=DEADLINE + timedelta(seconds=arrived) if arrived is not None else None,
    )


def test_the_muster_board_shows_who_arrived_who_is_on_the_way_and_who_is_silent() -> None:
    rows = [
        muster_request("F1", confirmed=-900, arrived=-60),
        muster_request("F2", confirmed=-900, arrived=120),
        muster_request("F3", confirmed=-800),
        muster_request("F4"),
        replace(request(), responder_key="X1"),  # asked, but not to muster
    ]
    (tier,) = muster(rows)
    assert (tier.arrived, tier.arrived_late, tier.on_the_way, tier.silent) == (
        ("F1",), ("F2",), ("F3",), ("F4",)
    )  # fmt: skip
    assert tier.total == 4 and tier.deadline == DEADLINE
    names = {"F3": "消防队员丙", "F4": "消防队员丁"}
    head, row, on_the_way, silent = muster_lines([tier], names, at(600))
    assert head.split()[:2] == ["集结", "muster"]
    assert row.split()[2:] == ["06:45Z", "已过", "passed", "4", "2", "1", "1", "1"]
    assert on_the_way.endswith("在途 on the way: 消防队员丙")
    assert silent.endswith("未应答 silent: 消防队员丁")


def test_a_long_muster_list_names_the_first_few_and_counts_the_rest() -> None:
    rows = [muster_request(f"F{i}", confirmed=-1) for i in range(30)]
    *_, on_the_way = muster_lines(muster(rows), {}, at(0), limit=3)
    assert on_the_way.endswith("F0、F1、F2 …等30人 (30 in all)")


def test_requests_without_muster_make_no_muster_board() -> None:
    assert muster([request(), request(confirmed=1)]) == []


# --- tally ---------------------------------------------------------------------------------


def test_tally_counts_each_state_per_tier() -> None:
    requests = [
        request(Tier.VILLAGE, confirmed=-10),
        request(Tier.VILLAGE, confirmed=-5),
        request(Tier.VILLAGE, confirmed=120),
        request(Tier.VILLAGE),
        request(Tier.VILLAGE, escalated=300),
        request(Tier.TOWNSHIP, confirmed=-1),
        request(Tier.TOWNSHIP),
    ]
    assert tally(requests, at(600)) == [
        TierTally(Tier.TOWNSHIP, total=2, confirmed=1, late=0, pending=0, silent=1, escalated=0),
        TierTally(Tier.VILLAGE, total=5, confirmed=2, late=1, pending=0, silent=2, escalated=1),
    ]


def test_tally_counts_pending_before_the_deadline() -> None:
    (row,) = tally([request(Tier.COUNTY), request(Tier.COUNTY, confirmed=-1)], at(-60))
    assert (row.pending, row.confirmed, row.silent) == (1, 1, 0)


def test_tally_counts_a_late_answer_after_escalation_as_late_and_escalated() -> None:
    (row,) = tally([request(Tier.VILLAGE, escalated=300, confirmed=400)], at(600))
    assert (row.total, row.late, row.silent, row.escalated) == (1, 1, 0, 1)


def test_tally_lists_tiers_top_down_and_leaves_out_tiers_without_requests() -> None:
    requests = [request(Tier.VILLAGE), request(Tier.CITY), request(Tier.VILLAGE)]
    assert [t.tier for t in tally(requests, at(0))] == [Tier.CITY, Tier.VILLAGE]


def test_tally_of_nothing_is_empty() -> None:
    assert tally([], at(0)) == []


def test_tally_accepts_a_one_shot_iterable() -> None:
    rows = tally(iter([request(Tier.CITY), request(Tier.COUNTY)]), at(0))
    assert [(t.tier, t.total) for t in rows] == [(Tier.CITY, 1), (Tier.COUNTY, 1)]


# --- summary and lines ---------------------------------------------------------------------


def test_summary_counts_late_answers_as_confirmed() -> None:
    requests = [
        request(Tier.COUNTY, confirmed=-1),
        request(Tier.VILLAGE, confirmed=-1),
        request(Tier.VILLAGE, escalated=300, confirmed=400),
        request(Tier.VILLAGE, escalated=300),
        request(Tier.VILLAGE),
    ]
    assert summary(tally(requests, at(600))) == "叫应: 3/5 confirmed, 2 escalated"


def test_summary_of_nothing_is_zero_of_zero() -> None:
    assert summary([]) == "叫应: 0/0 confirmed, 0 escalated"


def test_summary_accepts_a_one_shot_iterable() -> None:
    rows = tally([request(Tier.CITY, confirmed=-1), request(Tier.CITY)], at(600))
    assert summary(iter(rows)) == "叫应: 1/2 confirmed, 0 escalated"


def test_lines_are_a_header_then_one_row_per_tier_with_its_counts() -> None:
    rows = tally(
        [request(Tier.TOWNSHIP, confirmed=-1), request(Tier.VILLAGE, escalated=1)], at(600)
    )
    header, township, village = lines(rows)
    assert header.split()[:4] == ["层级", "tier", "人数", "total"]
    assert township.split() == ["乡镇级", "township", "1", "1", "0", "0", "0", "0", "0"]
    assert village.split() == ["村级", "village", "1", "0", "0", "0", "1", "0", "1"]
