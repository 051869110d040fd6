"""Security review, as tests: what an attacker can send must do nothing it should not."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import jinja2
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import AUTH_TOKEN, DEMO, PUBLIC_URL, sign
from warnbot import links, log
from warnbot.app import App
from warnbot.errors import ParseError
from warnbot.ingest import cap
from warnbot.render import Renderer
from warnbot.schedule import Schedule
from warnbot.web import make_app

FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()


@pytest.fixture
async def client(app: App, aiohttp_client: Any) -> TestClient:
    await app.ingest("demo", cap.parse(FEED))
    return await aiohttp_client(make_app(app))


async def test_a_link_confirms_only_the_one_person_it_was_sent_to(
    app: App, client: TestClient
) -> None:
    first, second = (await app.store.requests_of(1))[:2]
    resp = await client.post("/a/" + links.sign(first.id, app.link_secret))
    assert resp.status == 200
    statuses = {r.id: r.status for r in await app.store.requests_of(1)}
    assert statuses[first.id] == "confirmed" and statuses[second.id] == "pending"


async def test_links_cannot_be_enumerated_by_walking_the_ids(app: App, client: TestClient) -> None:
    """Knowing one token and the id scheme gives no other: each id needs its own MAC."""
    mine = links.sign(1, app.link_secret)
    mac = mine.split(".")[1]
    for other in range(2, 12):
        resp = await client.post(f"/a/{links._base36(other)}.{mac}")
        assert resp.status == 404
    assert all(r.status == "pending" for r in await app.store.requests_of(1))


async def test_a_link_expires_with_its_incident_and_records_nothing_after_the_lift(
    app: App, client: TestClient
) -> None:
    first = (await app.store.requests_of(1))[0]
    await app.store.lift(1, app.clock())
    resp = await client.post("/a/" + links.sign(first.id, app.link_secret))
    assert resp.status == 200 and "本次响应已结束" in await resp.text()
    assert (await app.store.request(first.id)).status == "pending"  # type: ignore[union-attr]


def test_a_template_cannot_reach_python_internals_or_files(tmp_path: Any) -> None:
    renderer = Renderer()
    env = renderer.env
    with pytest.raises(jinja2.exceptions.SecurityError):
        env.from_string("{{ ''.__class__.__mro__[1].__subclasses__() }}").render()
    with pytest.raises(jinja2.exceptions.SecurityError):
        env.from_string("{{ f.__globals__ }}").render(
            f=test_a_template_cannot_reach_python_internals_or_files
        )
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret", encoding="utf-8")
    with pytest.raises(jinja2.exceptions.TemplateNotFound):
        env.from_string("{% include '" + str(secret) + "' %}").render()
    with pytest.raises(jinja2.exceptions.TemplateNotFound):
        env.from_string("{% include '../../../../../../etc/passwd' %}").render()


def test_a_cap_document_with_an_external_entity_is_refused() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&x;</identifier></alert>'
    )
    with pytest.raises(ParseError):
        cap.parse(xxe)


def test_a_billion_laughs_cap_document_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><note>&lol2;</note></alert>'
    )
    with pytest.raises(ParseError):
        cap.parse(bomb)


async def test_a_request_body_over_the_limit_is_refused_before_it_is_read(
    client: TestClient,
) -> None:
    form = {"From": "+8617000000101", "Body": "x" * (3 * 1024 * 1024)}
    resp = await client.post("/hooks/twilio/sms", data=form)
    assert resp.status == 413


async def test_a_crash_in_a_handler_shows_no_secret_on_the_500_page_or_in_the_log(
    app: App, aiohttp_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    link_secret = app.link_secret

    async def crashing_reply(phone: str, text: str, message_id: str | None = None) -> str:
        raise RuntimeError(f"something broke with key={link_secret} token={AUTH_TOKEN}")

    app.sms_reply = crashing_reply  # type: ignore[method-assign]
    log.configure("json")
    client = await aiohttp_client(make_app(app))
    url = f"{PUBLIC_URL}/hooks/twilio/sms"
    form = {"From": "+8617000000101", "Body": "1"}
    resp = await client.post("/hooks/twilio/sms", data=form, headers=sign(url, form))
    page = await resp.text()
    assert resp.status == 500
    assert link_secret not in page and AUTH_TOKEN not in page and "Traceback" not in page
    logged = capsys.readouterr().err
    assert "handler_failed" in logged and "something broke" in logged  # it was logged…
    assert link_secret not in logged and AUTH_TOKEN not in logged  # …with the secrets blanked


async def test_a_forged_twilio_webhook_changes_nothing(app: App, client: TestClient) -> None:
    form = {"From": "+8617000000101", "Body": "1"}
    headers = sign(f"{PUBLIC_URL}/hooks/twilio/sms", form, token="wrong-token")
    resp = await client.post("/hooks/twilio/sms", data=form, headers=headers)
    assert resp.status == 403
    assert all(r.status == "pending" for r in await app.store.requests_of(1))


async def test_a_failing_jobs_traceback_is_logged_with_every_configured_secret_blanked(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scheduled jobs log their own failures (``job_failed``): the exception text
    and its traceback pass through the same scrubber as a crashing handler's."""
    link_secret = app.link_secret

    async def leaky() -> None:
        raise RuntimeError(f"provider said no to key={link_secret} token={AUTH_TOKEN}")

    log.configure("json")
    async with aiohttp.ClientSession() as session:
        jobs = Schedule(app, session, leader=False)
        await jobs._guarded("leaky", leaky)()
    logged = capsys.readouterr().err
    assert "job_failed" in logged and "RuntimeError" in logged
    assert link_secret not in logged and AUTH_TOKEN not in logged and "[secret]" in logged


async def test_a_library_logging_through_the_standard_library_is_scrubbed_too(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """aiohttp, asyncio and SQLAlchemy log through ``logging``, not structlog."""
    log.configure("json")
    try:
        raise ConnectionError(f"refused with token={AUTH_TOKEN}")
    except ConnectionError:
        logging.getLogger("aiohttp.client").exception("call to +8613800138000 failed")
    logged = capsys.readouterr().err
    assert "ConnectionError" in logged and "+86138****8000" in logged
    assert AUTH_TOKEN not in logged and "+8613800138000" not in logged
