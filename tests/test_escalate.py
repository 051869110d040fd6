"""Tests for warnbot.escalate: the 叫应 ladder as a pure function of time.

Examples first, then properties over many timelines: random tier policies, random ticks,
and a caller that does what ``App.tick`` does — remembers the keys of every step it fired
and passes them back on the next tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import T0
from warnbot.escalate import escalate
from warnbot.model import Request, Step, Tier, TierPolicy

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


def test_an_escalated_request_escalates_no_further() -> None:
    assert due(86_400, req=request(status="escalated")) == []


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


policies = st.builds(
    TierPolicy,
    ack_window_s=st.floats(1, 3600, allow_nan=False),
    repeat_count=st.integers(0, 3),
    repeat_interval_s=st.one_of(st.integers(1, 1800).map(float), st.floats(0.001, 1800)),
)


@st.composite
def cases(draw: st.DrawFn) -> list[Case]:
    """1–4 requests sent at T0, each with its own policy, status and superior."""
    out = []
    for i in range(1, draw(st.integers(1, 4)) + 1):
        policy = draw(policies)
        status = draw(st.sampled_from(["pending", "pending", "pending", "confirmed", "escalated"]))
        deadline = T0 + timedelta(seconds=policy.ack_window_s)
        req = Request(
            id=i,
            incident_id=100 + i % 2,
            responder_key=f"P{i}",
            tier=Tier.VILLAGE,
            reply_code=str(i),
            status=status,
            sent_at=T0,
            deadline=deadline,
        )
        out.append(Case(req, policy, draw(st.sampled_from([None, f"S{i}"]))))
    return out


TIMELINES = settings(max_examples=150, deadline=None)
# Tick times in microseconds after T0; sorted, and a tick may repeat (run twice).
ticks = st.lists(st.integers(0, 10_000 * 1_000_000), min_size=1, max_size=40).map(sorted)


def run(timeline: list[Case], tick_us: list[int]) -> list[tuple[datetime, Step]]:
    """Call escalate as App.tick does, remembering fired keys; the steps fired, in order."""
    pending = [(c.request, c.policy) for c in timeline]
    superiors = {c.request.responder_key: c.superior for c in timeline}
    fired: set[str] = set()
    history: list[tuple[datetime, Step]] = []
    for us in tick_us:
        now = T0 + timedelta(microseconds=us)
        for step in escalate(pending, superiors, frozenset(fired), now):
            history.append((now, step))
            fired.add(step.key)
    return history


def overdue_s(case: Case, now: datetime) -> float:
    return (now - case.request.deadline).total_seconds()


@TIMELINES
@given(cases(), ticks)
def test_every_step_key_fires_at_most_once(timeline: list[Case], tick_us: list[int]) -> None:
    keys = [s.key for _, s in run(timeline, tick_us)]
    assert len(keys) == len(set(keys))


@TIMELINES
@given(cases(), ticks)
def test_nothing_fires_before_the_deadline(timeline: list[Case], tick_us: list[int]) -> None:
    by_id = {c.request.id: c for c in timeline}
    for now, step in run(timeline, tick_us):
        assert now >= by_id[step.request_id].request.deadline


@TIMELINES
@given(cases(), ticks)
def test_confirmed_and_escalated_requests_produce_nothing(
    timeline: list[Case], tick_us: list[int]
) -> None:
    closed = {c.request.id for c in timeline if c.request.status != "pending"}
    assert not [s for _, s in run(timeline, tick_us) if s.request_id in closed]


@TIMELINES
@given(cases(), ticks)
def test_repeats_fire_in_increasing_n_within_the_repeat_count_and_never_after_the_superior(
    timeline: list[Case], tick_us: list[int]
) -> None:
    history = run(timeline, tick_us)
    for case in timeline:
        mine = [s for _, s in history if s.request_id == case.request.id]
        kinds = [s.kind for s in mine]
        if "superior" in kinds:
            assert kinds.index("superior") == len(kinds) - 1, kinds
        ns = [s.n for s in mine if s.kind == "repeat"]
        assert ns == sorted(set(ns)), ns
        assert all(1 <= n <= case.policy.repeat_count for n in ns), ns


@TIMELINES
@given(cases(), ticks)
def test_the_superior_fires_at_the_first_tick_overdue_by_every_repeat_interval(
    timeline: list[Case], tick_us: list[int]
) -> None:
    history = run(timeline, tick_us)
    for case in timeline:
        if case.request.status != "pending":
            continue
        ladder = case.policy.repeat_count * case.policy.repeat_interval_s
        times = [T0 + timedelta(microseconds=us) for us in tick_us]
        expected = next((t for t in times if overdue_s(case, t) >= ladder), None)
        told = [
            (now, s)
            for now, s in history
            if s.request_id == case.request.id and s.kind == "superior"
        ]
        if expected is None:
            assert told == []
        else:
            assert [now for now, _ in told] == [expected]
            (_, step) = told[0]
            assert (step.key, step.target_key, step.responder_key, step.incident_id) == (
                f"superior:{case.request.id}", case.superior, case.request.responder_key,
                case.request.incident_id,
            )  # fmt: skip


@TIMELINES
@given(cases(), ticks)
def test_each_reminder_fires_at_the_first_tick_in_its_interval(
    timeline: list[Case], tick_us: list[int]
) -> None:
    history = run(timeline, tick_us)
    for case in timeline:
        if case.request.status != "pending":
            continue
        interval = case.policy.repeat_interval_s
        ladder = case.policy.repeat_count * interval
        first_in_slot: dict[int, datetime] = {}
        for us in tick_us:
            now = T0 + timedelta(microseconds=us)
            late = overdue_s(case, now)
            if 0 <= late < ladder:
                first_in_slot.setdefault(int(late // interval) + 1, now)
        fired = {
            s.n: now for now, s in history if s.request_id == case.request.id and s.kind == "repeat"
        }
        assert fired == first_in_slot
