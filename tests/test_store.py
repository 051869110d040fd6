"""The store on SQLite and PostgreSQL: the same suite runs on both engines."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.conftest import T0
from tests.factories import delivery, incident, person
from warnbot.model import Message, Receipt, Request, Step, Tier
from warnbot.store import Store


def _one_message(req: Request) -> list[Message]:
    return [
        Message(
            f"request:{req.id}",
            "console",
            "+8617000000001",
            "body",
            req.incident_id,
            req.responder_key,
        )
    ]


async def _open_with(store: Store, *people: str) -> tuple[int, list[Request]]:
    opened = await store.open_incident(incident(T0), warning_key="s,id1")
    reqs = await store.add_requests(
        opened.id, [delivery(person(k), T0) for k in people], T0, _one_message
    )
    return opened.id, reqs


async def test_migrations_run_twice_without_change(store: Store) -> None:
    await store.migrate()
    await store.ping()


async def test_roster_sync_replaces_people_and_maps_phones(store: Store) -> None:
    await store.sync_roster([person("A", phone="+8617000000001"), person("B")])
    await store.sync_roster([person("A", phone="+8617000000009")])
    assert [p.key for p in await store.roster()] == ["A"]
    assert await store.responder_for_phone("+8617000000009") == "A"
    assert await store.responder_for_phone("+8617000000001") is None


async def test_a_warning_is_recorded_once(store: Store) -> None:
    from warnbot.model import Warning

    w = Warning(
        identifier="id1", sender="s", sent=T0, status="Actual", msg_type="Alert", scope="Public"
    )
    assert await store.record_warning("feed", w, T0) is True
    assert await store.record_warning("other-feed", w, T0) is False


async def test_incident_keeps_its_frozen_policy(store: Store) -> None:
    opened = await store.open_incident(incident(T0), warning_key="s,id1")
    loaded = await store.incident(opened.id)
    assert loaded == opened
    assert [(i.id, k) for i, k in await store.open_incidents()] == [(opened.id, "s,id1")]


async def test_requests_and_their_messages_are_written_together(store: Store) -> None:
    _, reqs = await _open_with(store, "A", "B")
    assert [r.reply_code for r in reqs] == ["11", "11"]  # codes start at 11: "1" is bare
    claimed = await store.claim(10, T0, lease_s=60)
    assert sorted(r.responder_key for r in claimed) == ["A", "B"]


async def test_asking_the_same_person_twice_about_one_incident_does_nothing(store: Store) -> None:
    incident_id, _ = await _open_with(store, "A")
    again = await store.add_requests(incident_id, [delivery(person("A"), T0)], T0, _one_message)
    assert again == []
    assert (await store.outbox_counts()) == {"queued": 1}


async def test_a_second_open_incident_gets_the_next_reply_code(store: Store) -> None:
    await _open_with(store, "A")
    second = await store.open_incident(incident(T0, region="449902"), warning_key="s,id2")
    reqs = await store.add_requests(second.id, [delivery(person("A"), T0)], T0, _one_message)
    assert reqs[0].reply_code == "12"


async def test_codes_climb_above_every_open_one_and_start_again_when_none_is_open(
    store: Store,
) -> None:
    """Code 11 always means "the person's only open request when asked"."""
    first_id, (first,) = await _open_with(store, "A")
    second = await store.open_incident(incident(T0, region="449902"), warning_key="s,id2")
    (two,) = await store.add_requests(second.id, [delivery(person("A"), T0)], T0, _one_message)
    await store.record_ack(first.id, "sms", "11", T0)  # 11 is free again, 12 still open
    third = await store.open_incident(incident(T0, region="449903"), warning_key="s,id3")
    (three,) = await store.add_requests(third.id, [delivery(person("A"), T0)], T0, _one_message)
    assert (first.reply_code, two.reply_code, three.reply_code) == ("11", "12", "13")
    for done in (two, three):
        await store.record_ack(done.id, "sms", done.reply_code, T0)
    fourth = await store.open_incident(incident(T0, region="449904"), warning_key="s,id4")
    (four,) = await store.add_requests(fourth.id, [delivery(person("A"), T0)], T0, _one_message)
    assert four.reply_code == "11" and first_id


async def test_claimed_rows_are_not_claimed_again_until_the_lease_expires(store: Store) -> None:
    await _open_with(store, "A")
    assert len(await store.claim(10, T0, lease_s=60)) == 1
    assert await store.claim(10, T0 + timedelta(seconds=30), lease_s=60) == []
    reclaimed = await store.claim(10, T0 + timedelta(seconds=61), lease_s=60)
    assert [r.attempts for r in reclaimed] == [2]


async def test_concurrent_claims_never_share_a_row(store: Store) -> None:
    _incident_id, _ = await _open_with(store, *[f"P{i}" for i in range(40)])
    batches = await asyncio.gather(*(store.claim(7, T0, lease_s=60) for _ in range(8)))
    ids = [r.id for batch in batches for r in batch]
    assert len(ids) == len(set(ids)) == 40


async def test_sent_and_failed_rows_leave_the_queue(store: Store) -> None:
    await _open_with(store, "A", "B")
    a, b = await store.claim(10, T0, lease_s=60)
    await store.mark_sent(a.id, Receipt("SM1"), T0)
    await store.mark_failed(b.id, "Twilio 400 code 21211", retry_at=None)
    assert await store.outbox_counts() == {"sent": 1, "failed": 1}
    assert await store.claim(10, T0 + timedelta(hours=1), lease_s=60) == []


async def test_a_retryable_failure_is_claimed_again_after_its_backoff(store: Store) -> None:
    await _open_with(store, "A")
    (row,) = await store.claim(10, T0, lease_s=60)
    await store.mark_failed(row.id, "429", retry_at=T0 + timedelta(seconds=5))
    assert await store.claim(10, T0 + timedelta(seconds=4), lease_s=60) == []
    assert len(await store.claim(10, T0 + timedelta(seconds=5), lease_s=60)) == 1


async def test_an_ack_confirms_once_and_knows_when_it_is_late(store: Store) -> None:
    _, (req,) = await _open_with(store, "A")
    late_time = req.deadline + timedelta(seconds=1)
    first = await store.record_ack(req.id, "sms", "1", late_time)
    again = await store.record_ack(req.id, "link", "", late_time)
    assert first is not None and first.new and first.late
    assert again is not None and not again.new
    assert (await store.request(req.id)).status == "confirmed"  # type: ignore[union-attr]


async def test_each_person_confirms_only_their_own_request(store: Store) -> None:
    _, (a, _b) = await _open_with(store, "A", "B")
    await store.record_ack(a.id, "sms", "1", T0)
    assert [r.status for r in await store.requests_of(a.incident_id)] == ["confirmed", "pending"]


async def test_a_ladder_step_fires_once_even_when_two_ticks_race(store: Store) -> None:
    _, (req,) = await _open_with(store, "A")
    step = Step(f"superior:{req.id}", "superior", req.incident_id, req.id, "A")

    def compose(steps: list[Step]) -> list[Message]:
        return [
            Message(f"{s.key}:console", "console", "+8617000000002", "silent", s.incident_id, "B")
            for s in steps
        ]

    results = await asyncio.gather(*(store.fire([step], T0, compose) for _ in range(4)))
    assert sum(len(r) for r in results) == 1
    escalated = await store.request(req.id)
    assert escalated is not None and escalated.status == "escalated"
    assert escalated.escalated_at == T0
    assert await store.fired_keys([req.incident_id]) == {step.key}
    # the ladder climbs on past the superior (duty officer, unreachable), still escalated
    assert [(r.id, r.status) for r, _ in await store.pending()] == [(req.id, "escalated")]


async def test_pending_lists_open_requests_with_their_tier_policy(store: Store) -> None:
    _, (req,) = await _open_with(store, "A")
    ((row, policy),) = await store.pending()
    assert row == req and policy.ack_window_s == 600
    await store.lift(req.incident_id, T0)
    assert await store.pending() == []
    assert await store.open_requests_for("A") == []


async def test_feed_health_counts_failures_until_a_success(store: Store) -> None:
    await store.feed_failed("cap", "HTTP 500", T0)
    await store.feed_failed("cap", "HTTP 502", T0)
    (row,) = await store.feed_health()
    assert row["failures"] == 2 and row["last_error"] == "HTTP 502"
    await store.feed_ok("cap", T0)
    assert (await store.feed_health())[0]["failures"] == 0


async def test_the_link_key_is_generated_once_and_kept(store: Store) -> None:
    first = await store.secret("link", lambda: "one")
    assert await store.secret("link", lambda: "two") == first == "one"


async def test_tier_is_stored_and_read_back(store: Store) -> None:
    await store.sync_roster([person("C", tier=Tier.CITY, region="449900")])
    (p,) = await store.roster()
    assert p.tier is Tier.CITY and p.region_code == "449900"
