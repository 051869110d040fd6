"""The SMS intake's read (``Store.sender``) and answers recorded at once, on both engines."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from tests.conftest import T0
from tests.factories import delivery, incident, person
from warnbot.model import Message, Request
from warnbot.store import Store

A = person("A", phone="+8617000000001")
B = person("B", phone="+8617000000002")


def _nothing(_req: Request) -> list[Message]:
    return []


async def _ask(store: Store, headline: str, *people: str) -> tuple[int, list[Request]]:
    draft = dataclasses.replace(incident(T0), key=f"{headline}@449901", headline=headline)
    opened = await store.open_incident(draft, warning_key=None)
    who = {"A": A, "B": B}
    reqs = await store.add_requests(opened.id, [delivery(who[k], T0) for k in people], T0, _nothing)
    return opened.id, reqs


async def test_a_number_on_no_roster_has_no_sender(store: Store) -> None:
    await store.sync_roster([A])
    assert await store.sender("+8617000000009") is None


async def test_a_person_asked_nothing_is_a_sender_with_nothing_to_answer(store: Store) -> None:
    await store.sync_roster([A, B])
    await _ask(store, "暴雨", "A")
    sender = await store.sender(B.phones[0])
    assert sender is not None and sender.key == "B"
    assert (sender.requests, sender.open, sender.answered, sender.musters) == ((), [], [], [])


async def test_the_sender_comes_with_their_requests_of_open_incidents_newest_first(
    store: Store,
) -> None:
    await store.sync_roster([A, B])
    lifted, _ = await _ask(store, "大风", "A")
    await store.lift(lifted, T0)
    first, _ = await _ask(store, "暴雨", "A", "B")
    flood, (torrent, _) = await _ask(store, "山洪", "A", "B")
    await store.record_ack(torrent.id, "sms", "12", T0)
    sender = await store.sender(A.phones[0])
    assert sender is not None
    assert [r.incident_id for r in sender.requests] == [flood, first]
    assert [r.id for r in sender.answered] == [torrent.id]
    assert [r.incident_id for r in sender.open] == [first]
    assert sender.headline(flood) == "山洪" and sender.headline(first) == "暴雨"
    assert sender.headline(lifted) is None  # a lifted incident is nothing to answer
    assert sender.open == await store.open_requests_for("A")
    assert sender.answered == await store.answered_for("A")


async def test_answers_arriving_at_once_are_all_kept_and_each_request_confirms_once(
    store: Store,
) -> None:
    """32 answers at once, as 32 webhooks would write them: none lost, none doubled."""
    await store.sync_roster([A, B])
    _, reqs = await _ask(store, "暴雨", "A", "B")
    late = T0 + timedelta(hours=1)
    results = await asyncio.gather(
        *(store.record_ack(reqs[i % 2].id, "sms", f"收到 {i}", late) for i in range(32))
    )
    assert all(r is not None and r.late for r in results)
    assert sum(1 for r in results if r is not None and r.new) == 2
    answers = await store.answers_of(reqs[0].incident_id)
    assert len(answers) == 32
    assert sorted(a.kind for a in answers).count("confirm") == 2
    assert {r.status for r in await store.requests_of(reqs[0].incident_id)} == {"confirmed"}
