"""Tests for warnbot.escalate: the 叫应 ladder as a pure function of time.

Examples first, then properties over many timelines: random tier policies (the ones the
settings accept), random ticks, answers and lifts, and a caller that does what
``App.tick`` and the store do — remembers the keys of every step it fired, passes them
back on the next tick, and moves each request on (escalated, unreachable, confirmed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import T0
from warnbot.escalate import escalate, muster_overdue
from warnbot.model import LADDER, Request, Step, Tier, TierPolicy
from warnbot.settings import TierPolicySettings

DEADLINE = T0 + timedelta(minutes=10)
POLICY = TierPolicy(ack_window_s=600, repeat_count=2, repeat_interval_s=300)
SUPERIORS = {"V01": "T01", "T01": "X01", "X01": None}


def request(
    request_id: int = 1,
    responder: str = "V01",
    status: str = "pending",
    deadline: datetime = DEADLINE,
    incident_id: int = 9,
) -> Request:
    return Request(
        id=request_id,
        incident_id=incident_id,
        responder_key=responder,
        tier=Tier.VILLAGE,
        reply_code="1",
        status=status,
        sent_at=deadline - timedelta(minutes=10),
        deadline=deadline,
    )


def at(seconds_after_deadline: float) -> datetime:
    return DEADLINE + timedelta(seconds=seconds_after_deadline)


def due(
    seconds_after_deadline: float,
    *,
    policy: TierPolicy = POLICY,
    req: Request | None = None,
    fired: frozenset[str] = frozenset(),
) -> list[Step]:
    return escalate([(req or request(), policy)], SUPERIORS, fired, at(seconds_after_deadline))


# --- muster: on the way past the deadline (plain timelines) ---------------------------------

ASKED = T0
MUSTER_BY = T0 + timedelta(minutes=30)


def mustered(
    request_id: int = 1,
    responder: str = "V01",
    received_min: float | None = 5,
    arrived_min: float | None = None,
    status: str = "confirmed",
) -> Request:
    """Asked at T0 to arrive within 30 minutes; answered 收到 and arrived when given."""
    minute = timedelta(minutes=1)
    return replace(
        request(request_id, responder, status, deadline=T0 + timedelta(minutes=10)),
        sent_at=ASKED,
        muster_deadline=MUSTER_BY,
        confirmed_at=None if received_min is None else ASKED + received_min * minute,
        arrived_at=None if arrived_min is None else ASKED + arrived_min * minute,
    )


def test_nobody_is_late_to_muster_before_the_deadline() -> None:
    just_before = MUSTER_BY - timedelta(seconds=1)
    assert muster_overdue([mustered()], SUPERIORS, frozenset(), just_before) == []


def test_at_the_deadline_a_person_on_the_way_is_reported_to_their_superior() -> None:
    (step,) = muster_overdue([mustered()], SUPERIORS, frozenset(), MUSTER_BY)
    assert (step.key, step.kind, step.target_key) == ("muster:1", "muster", "T01")


def test_a_person_on_the_way_without_a_superior_goes_to_the_duty_officer() -> None:
    (step,) = muster_overdue([mustered(responder="X01")], SUPERIORS, frozenset(), MUSTER_BY)
    assert step.target_key is None


def test_arrived_silent_and_superseded_persons_are_not_late_to_muster() -> None:
    timeline = [
        mustered(1, arrived_min=25),  # in time
        mustered(2, arrived_min=40),  # late, but arrived before this tick
        mustered(3, received_min=None, status="pending"),  # silent: the ladder's business
        mustered(4, status="superseded"),  # asked again after an upgrade
    ]
    later = MUSTER_BY + timedelta(minutes=15)
    assert muster_overdue(timeline, SUPERIORS, frozenset(), later) == []


def test_the_muster_report_is_made_once() -> None:
    later = MUSTER_BY + timedelta(hours=2)
    assert muster_overdue([mustered()], SUPERIORS, frozenset({"muster:1"}), later) == []


# --- examples ------------------------------------------------------------------------------


def test_nothing_is_due_before_the_deadline() -> None:
    assert due(-0.000001) == []
    assert due(-600) == []


def test_the_first_reminder_is_due_at_the_deadline() -> None:
    assert due(0) == [Step("repeat:1:1", "repeat", 9, 1, "V01", n=1)]


def test_the_second_reminder_is_due_one_interval_after_the_deadline() -> None:
    assert due(300) == [Step("repeat:1:2", "repeat", 9, 1, "V01", n=2)]


def test_the_superior_is_told_after_the_last_reminders_interval() -> None:
    assert due(600) == [Step("superior:1", "superior", 9, 1, "V01", target_key="T01")]


def test_just_before_the_last_interval_ends_it_is_still_the_last_reminder() -> None:
    assert [s.key for s in due(599.999)] == ["repeat:1:2"]


def test_a_person_without_a_superior_is_reported_to_the_duty_officer() -> None:
    (step,) = due(600, req=request(responder="X01"))
    assert (step.kind, step.target_key) == ("superior", None)


def test_a_person_missing_from_the_superior_map_is_reported_to_the_duty_officer() -> None:
    (step,) = due(600, req=request(responder="ghost"))
    assert (step.kind, step.target_key) == ("superior", None)


def test_with_no_repeats_the_superior_is_told_at_the_deadline() -> None:
    policy = TierPolicy(ack_window_s=600, repeat_count=0, repeat_interval_s=300)
    assert [s.key for s in due(0, policy=policy)] == ["superior:1"]


def test_after_a_long_pause_only_the_latest_reminder_is_sent() -> None:
    policy = TierPolicy(ack_window_s=600, repeat_count=3, repeat_interval_s=300)
    assert [s.key for s in due(650, policy=policy)] == ["repeat:1:3"]


def test_after_a_pause_past_every_reminder_only_the_superior_is_told() -> None:
    assert [s.key for s in due(86_400)] == ["superior:1"]


def test_a_step_already_fired_is_not_due_again() -> None:
    assert due(0, fired=frozenset({"repeat:1:1"})) == []
    assert due(600, fired=frozenset({"superior:1"})) == []


def test_a_fired_reminder_does_not_hide_the_next_one() -> None:
    assert [s.key for s in due(300, fired=frozenset({"repeat:1:1"}))] == ["repeat:1:2"]


def test_fired_keys_of_another_request_do_not_hide_this_ones_steps() -> None:
    assert [s.key for s in due(0, fired=frozenset({"repeat:2:1", "superior:2"}))] == ["repeat:1:1"]


def test_a_confirmed_request_escalates_no_further() -> None:
    assert due(0, req=request(status="confirmed")) == []
    assert due(86_400, req=request(status="confirmed")) == []


def test_an_escalated_request_climbs_on_but_tells_the_superior_only_once() -> None:
    assert due(86_400, req=request(status="escalated"), fired=frozenset({"superior:1"})) == []


def test_unreachable_and_superseded_requests_escalate_no_further() -> None:
    assert due(86_400, req=request(status="unreachable"), policy=FULL) == []
    assert due(86_400, req=request(status="superseded"), policy=FULL) == []


def test_a_delivered_request_climbs_like_a_pending_one() -> None:
    assert [s.key for s in due(0, req=request(status="delivered"))] == ["repeat:1:1"]


def test_requests_of_a_lifted_incident_escalate_no_further() -> None:
    steps = escalate([(request(), FULL)], SUPERIORS, frozenset(), at(86_400), lifted={9})
    assert steps == []


# The example: sent at DEADLINE - 600 s.
FULL = TierPolicy(
    ack_window_s=600,
    repeat_count=2,
    repeat_interval_s=300,
    voice_after_s=900,
    superior_after_s=1200,
    duty_officer_after_s=1800,
    unreachable_after_s=3600,
)


def since_sent(seconds: float) -> float:
    return seconds - 600  # seconds after the deadline


def test_the_full_ladder_in_order_at_each_configured_time() -> None:
    fired: set[str] = set()
    timeline = []
    for t in (599, 600, 899, 900, 1199, 1200, 1799, 1800, 3599, 3600, 7200):
        for s in due(since_sent(t), policy=FULL, fired=frozenset(fired)):
            fired.add(s.key)
            timeline.append((t, s.key))
    assert timeline == [
        (600, "repeat:1:1"),
        (900, "repeat:1:2"),
        (900, "voice:1:1"),
        (1200, "superior:1"),
        (1800, "duty_officer:1"),
        (3600, "unreachable:1"),
    ]


def test_voice_calls_repeat_one_interval_apart_up_to_their_count() -> None:
    calls = TierPolicy(ack_window_s=600, repeat_count=0, voice_after_s=600, voice_count=3)
    keys = [[s.key for s in due(t, policy=calls) if s.kind == "voice"] for t in (0, 300, 600, 5000)]
    assert keys == [["voice:1:1"], ["voice:1:2"], ["voice:1:3"], ["voice:1:3"]]


def test_after_a_long_pause_the_last_call_is_still_placed_once() -> None:
    assert "voice:1:1" in [s.key for s in due(since_sent(3000), policy=FULL)]


def test_after_a_pause_past_every_step_reports_are_made_and_the_person_given_up_on() -> None:
    keys = [s.key for s in due(since_sent(86_400), policy=FULL)]
    assert keys == ["superior:1", "duty_officer:1", "unreachable:1"]


def test_reminders_stop_once_the_superior_is_told_early() -> None:
    early = TierPolicy(
        ack_window_s=600, repeat_count=5, repeat_interval_s=300, superior_after_s=1000
    )
    assert [s.kind for s in due(since_sent(950), policy=early)] == ["repeat"]
    assert [s.kind for s in due(since_sent(1000), policy=early)] == ["superior"]


def test_the_duty_officer_step_has_no_target_the_app_finds_them() -> None:
    (step,) = [s for s in due(since_sent(1800), policy=FULL) if s.kind == "duty_officer"]
    assert (step.key, step.target_key, step.responder_key) == ("duty_officer:1", None, "V01")


def test_each_pending_request_runs_its_own_ladder() -> None:
    fast = TierPolicy(ack_window_s=60, repeat_count=0, repeat_interval_s=60)
    pending = [
        (request(1, "V01"), POLICY),
        (request(2, "T01", deadline=DEADLINE + timedelta(minutes=5)), POLICY),
        (request(3, "X01", deadline=DEADLINE - timedelta(minutes=1)), fast),
        (request(4, "V02", status="confirmed"), POLICY),
    ]
    steps = escalate(pending, SUPERIORS, frozenset(), at(0))
    assert [(s.key, s.target_key) for s in steps] == [("repeat:1:1", None), ("superior:3", None)]


# --- properties over timelines -------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    request: Request
    policy: TierPolicy
    superior: str | None
    confirmed_us: int | None  # when the person answers (µs after T0), if ever


@st.composite
def policies(draw: st.DrawFn) -> TierPolicy:
    """Random tier policies in ladder order — exactly those the settings accept."""
    window = draw(st.floats(1, 3600, allow_nan=False))
    count = draw(st.integers(0, 3))
    interval = draw(st.one_of(st.integers(1, 1800).map(float), st.floats(0.001, 1800)))
    fields: dict[str, object] = {
        "ack_window_s": window,
        "repeat_count": count,
        "repeat_interval_s": interval,
    }
    floor = window
    for name in (
        "voice_after_s",
        "superior_after_s",
        "duty_officer_after_s",
        "unreachable_after_s",
    ):
        if draw(st.booleans()):
            floor += draw(st.floats(0, 3600, allow_nan=False))
            fields[name] = floor
        if name == "superior_after_s" and "superior_after_s" not in fields:
            floor = max(floor, window + count * interval)  # the superior's default time
            if "voice_after_s" in fields:
                floor = max(floor, float(fields["voice_after_s"]))  # type: ignore[arg-type]
    if "voice_after_s" in fields:
        fields["voice_count"] = draw(st.integers(1, 3))
    checked = TierPolicySettings.model_validate(fields)  # the generator agrees with the settings
    return TierPolicy(**checked.model_dump())


@st.composite
def cases(draw: st.DrawFn) -> list[Case]:
    """1–4 requests sent at T0, each with its own policy, status, superior and answer time."""
    out = []
    for i in range(1, draw(st.integers(1, 4)) + 1):
        policy = draw(policies())
        status = draw(
            st.sampled_from(["pending", "pending", "delivered", "escalated", "confirmed"])
        )
        req = Request(
            id=i,
            incident_id=100 + i % 2,
            responder_key=f"P{i}",
            tier=Tier.VILLAGE,
            reply_code=str(i),
            status=status,
            sent_at=T0,
            deadline=T0 + timedelta(seconds=policy.ack_window_s),
        )
        answer = draw(st.one_of(st.none(), st.integers(0, 10_000 * 1_000_000)))
        out.append(Case(req, policy, draw(st.sampled_from([None, f"S{i}"])), answer))
    return out


TIMELINES = settings(max_examples=200, deadline=None)
# Tick times in microseconds after T0; sorted, and a tick may repeat (run twice).
ticks = st.lists(st.integers(0, 10_000 * 1_000_000), min_size=1, max_size=40).map(sorted)
lifts = st.one_of(st.none(), st.integers(0, 10_000 * 1_000_000))


def run(
    timeline: list[Case], tick_us: list[int], lift_us: int | None = None, processes: int = 1
) -> list[tuple[datetime, Step]]:
    """Call escalate as App.tick does — remembering fired keys, moving requests on (an
    answer confirms, the superior escalates, unreachable ends) — from ``processes``
    callers at each tick sharing one fired set; the steps fired, in order."""
    live = {c.request.id: c.request for c in timeline}
    superiors = {c.request.responder_key: c.superior for c in timeline}
    fired: set[str] = set()
    history: list[tuple[datetime, Step]] = []
    for us in tick_us:
        now = T0 + timedelta(microseconds=us)
        for c in timeline:
            if c.confirmed_us is not None and c.confirmed_us <= us:
                live[c.request.id] = replace(live[c.request.id], status="confirmed")
        lifted = {100, 101} if lift_us is not None and lift_us <= us else set()
        pending = [(live[c.request.id], c.policy) for c in timeline]
        for _ in range(processes):
            for step in escalate(pending, superiors, frozenset(fired), now, lifted):
                history.append((now, step))
                fired.add(step.key)
                live[step.request_id] = _moved(live[step.request_id], step)
            pending = [(live[c.request.id], c.policy) for c in timeline]
    return history


def _moved(req: Request, step: Step) -> Request:
    if step.kind == "unreachable":
        return replace(req, status="unreachable")
    if step.kind == "superior" and req.status in ("pending", "delivered"):
        return replace(req, status="escalated")
    return req


def earliest(case: Case, step: Step) -> float:
    """Seconds after T0 before which ``step`` must not fire."""
    p, window = case.policy, (case.request.deadline - T0).total_seconds()
    return {
        "repeat": window + (step.n - 1) * p.repeat_interval_s,
        "voice": (p.voice_after_s or 0) + (step.n - 1) * p.repeat_interval_s,
        "superior": p.superior_after_s or max(window, p.voice_after_s or 0),
        "duty_officer": p.duty_officer_after_s or 0,
        "unreachable": p.unreachable_after_s or 0,
    }[step.kind]


@TIMELINES
@given(cases(), ticks, lifts)
def test_every_step_key_fires_at_most_once_even_from_two_processes(
    timeline: list[Case], tick_us: list[int], lift_us: int | None
) -> None:
    keys = [s.key for _, s in run(timeline, tick_us, lift_us, processes=2)]
    assert len(keys) == len(set(keys))
    assert run(timeline, tick_us, lift_us, processes=2) == run(timeline, tick_us, lift_us)


@TIMELINES
@given(cases(), ticks)
def test_no_step_fires_before_its_time(timeline: list[Case], tick_us: list[int]) -> None:
    by_id = {c.request.id: c for c in timeline}
    for now, step in run(timeline, tick_us):
        case = by_id[step.request_id]
        assert now >= case.request.deadline
        assert (now - T0).total_seconds() >= earliest(case, step) - 1e-6, step


@TIMELINES
@given(cases(), ticks, lifts)
def test_nothing_fires_after_the_answer_or_the_lift(
    timeline: list[Case], tick_us: list[int], lift_us: int | None
) -> None:
    by_id = {c.request.id: c for c in timeline}
    for now, step in run(timeline, tick_us, lift_us):
        case = by_id[step.request_id]
        us = (now - T0) // timedelta(microseconds=1)
        assert case.request.status != "confirmed"
        assert case.confirmed_us is None or us < case.confirmed_us
        assert lift_us is None or us < lift_us


@TIMELINES
@given(cases(), ticks)
def test_the_rungs_are_climbed_in_ladder_order_and_nothing_follows_unreachable(
    timeline: list[Case], tick_us: list[int]
) -> None:
    history = run(timeline, tick_us)
    for case in timeline:
        mine = [s for _, s in history if s.request_id == case.request.id]
        first = [LADDER.index(k) for k in dict.fromkeys(s.kind for s in mine)]
        assert first == sorted(first), [s.key for s in mine]
        if "unreachable" in [s.kind for s in mine]:
            assert mine[-1].kind == "unreachable"
        ns = {k: [s.n for s in mine if s.kind == k] for k in ("repeat", "voice")}
        assert ns["repeat"] == sorted(set(ns["repeat"]))
        assert all(1 <= n <= case.policy.repeat_count for n in ns["repeat"])
        assert all(1 <= n <= case.policy.voice_count for n in ns["voice"])
        kinds = [s.kind for s in mine]
        if "superior" in kinds:
            assert "repeat" not in kinds[kinds.index("superior") :]


@TIMELINES
@given(cases(), ticks, st.integers(0, 10_000 * 1_000_000))
def test_a_tick_repeated_at_any_time_fires_nothing_new(
    timeline: list[Case], tick_us: list[int], again_us: int
) -> None:
    """Whatever has fired, asking again at the same moment gives nothing."""
    now = T0 + timedelta(microseconds=again_us)
    pending = [(c.request, c.policy) for c in timeline]
    superiors = {c.request.responder_key: c.superior for c in timeline}
    first = escalate(pending, superiors, frozenset(), now)
    assert escalate(pending, superiors, frozenset(s.key for s in first), now) == []


@TIMELINES
@given(cases(), ticks)
def test_reports_fire_at_the_first_tick_at_or_after_their_time(
    timeline: list[Case], tick_us: list[int]
) -> None:
    history = run(timeline, tick_us)
    for case in timeline:
        if case.request.status == "confirmed" or case.confirmed_us is not None:
            continue
        for kind in ("superior", "duty_officer"):
            if kind == "superior" and case.request.status == "escalated":
                continue  # escalated in an earlier life: the key may or may not be recorded
            expected = next((t for t in _times(tick_us) if _report_due(case, kind, t)), None)
            told = [now for now, s in history if s.request_id == case.request.id and s.kind == kind]
            assert told == ([] if expected is None else [expected]), kind


def _report_due(case: Case, kind: str, t: datetime) -> bool:
    p = case.policy
    if kind == "duty_officer":
        return _after(p.duty_officer_after_s, t)
    return _superior_reached(case, t, p.repeat_count * p.repeat_interval_s)


def _times(tick_us: list[int]) -> list[datetime]:
    return [T0 + timedelta(microseconds=us) for us in tick_us]


def _after(after_s: float | None, t: datetime) -> bool:
    return after_s is not None and (t - T0).total_seconds() >= after_s


def _superior_reached(case: Case, t: datetime, ladder: float) -> bool:
    p = case.policy
    if p.superior_after_s is not None:
        return _after(p.superior_after_s, t)
    called = p.voice_after_s is None or _after(p.voice_after_s, t)
    return (t - case.request.deadline).total_seconds() >= ladder and called


@TIMELINES
@given(cases(), ticks)
def test_each_reminder_fires_at_the_first_tick_in_its_interval(
    timeline: list[Case], tick_us: list[int]
) -> None:
    history = run(timeline, tick_us)
    for case in timeline:
        if case.request.status == "confirmed" or case.confirmed_us is not None:
            continue
        p = case.policy
        ladder = p.repeat_count * p.repeat_interval_s
        first_in_slot: dict[int, datetime] = {}
        for now in _times(tick_us):
            late = (now - case.request.deadline).total_seconds()
            stopped = _superior_reached(case, now, ladder) or _after(p.unreachable_after_s, now)
            if 0 <= late < ladder and not stopped:
                first_in_slot.setdefault(
                    min(int(late // p.repeat_interval_s) + 1, p.repeat_count), now
                )
        fired = {
            s.n: now for now, s in history if s.request_id == case.request.id and s.kind == "repeat"
        }
        assert fired == first_in_slot
