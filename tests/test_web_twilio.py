"""The Twilio inbound-SMS webhook: signed replies confirm, anything forged gets 403."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import DEMO, PUBLIC_URL, sign
from warnbot.app import App
from warnbot.ingest import cap
from warnbot.web import make_app

URL = f"{PUBLIC_URL}/hooks/twilio/sms"
FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()


@pytest.fixture
async def client(app: App, aiohttp_client: Any) -> TestClient:
    await app.ingest("demo", cap.parse(FEED))
    return await aiohttp_client(make_app(app))


def _phone(app: App, key: str) -> str:
    return app.people[key].phones[0]


async def _statuses(app: App) -> dict[str, str]:
    return {r.responder_key: r.status for r in await app.store.requests_of(1)}


async def test_a_signed_reply_confirms_only_the_sender(app: App, client: TestClient) -> None:
    form = {"From": _phone(app, "V01"), "Body": "1"}
    resp = await client.post("/hooks/twilio/sms", data=form, headers=sign(URL, form))
    assert resp.status == 200 and resp.content_type == "application/xml"
    assert "<Message>已确认收到" in await resp.text()
    statuses = await _statuses(app)
    assert statuses["V01"] == "confirmed"
    assert [k for k, s in statuses.items() if s == "confirmed"] == ["V01"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": "Zm9yZ2Vk"},
        sign(URL, {"From": "+8617000000401", "Body": "2"}),  # signed for another body
        sign("https://attacker.example/hooks/twilio/sms", {"From": "+8617000000401", "Body": "1"}),
        sign(URL, {"From": "+8617000000401", "Body": "1"}, token="wrong-token"),
    ],
    ids=["unsigned", "garbage", "other-body", "other-url", "other-token"],
)
async def test_a_forged_reply_gets_403_and_records_nothing(
    app: App, client: TestClient, headers: dict[str, str]
) -> None:
    form = {"From": "+8617000000401", "Body": "1"}
    resp = await client.post("/hooks/twilio/sms", data=form, headers=headers)
    assert resp.status == 403
    assert "confirmed" not in (await _statuses(app)).values()


async def test_without_an_auth_token_every_request_is_refused(app: App, client: TestClient) -> None:
    app.settings = app.settings.model_copy(
        update={"twilio": app.settings.twilio.model_copy(update={"auth_token": None})}
    )
    form = {"From": _phone(app, "V01"), "Body": "1"}
    resp = await client.post("/hooks/twilio/sms", data=form, headers=sign(URL, form, token=""))
    assert resp.status == 403
    assert (await _statuses(app))["V01"] == "pending"


async def test_a_repeated_reply_changes_nothing(app: App, client: TestClient) -> None:
    form = {"From": _phone(app, "V01"), "Body": "收到"}
    for _ in range(2):
        resp = await client.post("/hooks/twilio/sms", data=form, headers=sign(URL, form))
        assert resp.status == 200
    (ack,) = [r for r in await app.store.requests_of(1) if r.responder_key == "V01"]
    assert ack.status == "confirmed"


async def test_a_number_on_no_roster_is_told_nothing_is_open(app: App, client: TestClient) -> None:
    form = {"From": "+8617000009999", "Body": "1"}
    resp = await client.post("/hooks/twilio/sms", data=form, headers=sign(URL, form))
    assert "没有待确认" in await resp.text()
    assert "confirmed" not in (await _statuses(app)).values()


async def test_an_unreadable_reply_lists_the_open_codes(app: App, client: TestClient) -> None:
    form = {"From": _phone(app, "V01"), "Body": "what is this"}
    resp = await client.post("/hooks/twilio/sms", data=form, headers=sign(URL, form))
    assert '"11"' in await resp.text()
    assert (await _statuses(app))["V01"] == "pending"


async def test_with_two_open_requests_a_bare_ok_asks_which(app: App, client: TestClient) -> None:
    from tests.factories import incident

    second = await app.store.open_incident(incident(app.clock(), region="449901001"), None)
    await app.notify(second)
    form = {"From": _phone(app, "V01"), "Body": "ok"}
    resp = await client.post("/hooks/twilio/sms", data=form, headers=sign(URL, form))
    text = await resp.text()
    assert '"11"' in text and '"12"' in text
    form = {"From": _phone(app, "V01"), "Body": "12"}
    await client.post("/hooks/twilio/sms", data=form, headers=sign(URL, form))
    mine = {r.incident_id: r.status for r in await app.store.open_requests_for("V01")}
    assert mine == {1: "pending"}


async def test_a_retried_webhook_sums_its_report_back_once(app: App, client: TestClient) -> None:
    """Twilio retries a webhook with the same MessageSid: 30 people moved, not 60."""
    form = {"From": _phone(app, "V01"), "Body": "1 已转移12户30人", "MessageSid": "SM" + "a" * 32}
    for _ in range(2):
        resp = await client.post("/hooks/twilio/sms", data=form, headers=sign(URL, form))
        assert resp.status == 200 and "已确认收到" in await resp.text()
    totals = await app.store.report_totals(1)
    village = totals[app.people["V01"].region_code].own
    assert (village.households_moved, village.people_moved, village.reports) == (12, 30, 1)


async def test_a_second_message_with_the_same_words_is_a_second_report(
    app: App, client: TestClient
) -> None:
    """Two distinct messages (two sids) are two reports, even with the same text."""
    await _reply(app, client, "V01", "1", "SM" + "0" * 32)
    for n in (1, 2):
        resp = await _reply(app, client, "V01", "已转移2户5人", f"SM{n:032d}")
        assert "已记录回执" in await resp.text()
    totals = await app.store.report_totals(1)
    assert totals[app.people["V01"].region_code].own.people_moved == 10


async def test_a_retried_report_on_its_own_is_answered_alike_and_filed_once(
    app: App, client: TestClient
) -> None:
    await _reply(app, client, "V01", "1", "SM" + "0" * 32)
    answers = [
        await (await _reply(app, client, "V01", "已转移2户5人", "SM" + "b" * 32)).text()
        for _ in range(2)
    ]
    assert answers[0] == answers[1] and "已记录回执" in answers[0]
    assert len(await app.store.reports_of(1)) == 1


async def _reply(app: App, client: TestClient, key: str, body: str, sid: str) -> Any:
    form = {"From": _phone(app, key), "Body": body, "MessageSid": sid}
    return await client.post("/hooks/twilio/sms", data=form, headers=sign(URL, form))
