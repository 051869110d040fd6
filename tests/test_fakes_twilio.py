"""The fake Twilio, driven by the official SDK exactly as warnbot's channel drives it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from warnbot.fakes import twilio_spec
from warnbot.fakes.twilio import FakeMessage, FakeTwilio, segments

# twilio 9.13's AsyncTwilioHttpClient still passes aiohttp.BasicAuth, deprecated in aiohttp 3.14.
pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]

ACCOUNT = "AC" + "a" * 32
TOKEN = "test-auth-token"
TO = "+8613800000001"
FROM = "+15005550006"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
CALLS = f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(account_sid=ACCOUNT, auth_token=TOKEN) as running:
        yield running


@pytest.fixture
async def client(fake: FakeTwilio) -> AsyncIterator[Client]:
    async with sdk(fake, TOKEN) as connected:
        yield connected


@contextlib.asynccontextmanager
async def sdk(fake: FakeTwilio, token: str) -> AsyncIterator[Client]:
    """The real SDK pointed at the fake, as warnbot's channel does it; closed afterwards."""
    http = AsyncTwilioHttpClient()
    client = Client(ACCOUNT, token, http_client=http)
    client.api.base_url = fake.base_url
    try:
        yield client
    finally:
        await http.close()


async def raw(
    fake: FakeTwilio, method: str, path: str, data: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """Send what the SDK never would, with valid credentials."""
    headers = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT, TOKEN)}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.request(method, fake.base_url + path, data=data) as response,
    ):
        return response.status, await response.json()


async def test_the_real_sdk_creates_a_message_and_fetches_it(
    fake: FakeTwilio, client: Client
) -> None:
    msg = await client.messages.create_async(to=TO, from_=FROM, body="测试")
    fetched = await client.messages(msg.sid).fetch_async()
    assert msg.sid.startswith("SM") and len(msg.sid) == 34
    assert (fetched.sid, fetched.to, fetched.from_, fetched.body) == (msg.sid, TO, FROM, "测试")
    assert fetched.status == "queued" and fetched.num_segments == "1"
    assert fetched.date_created is not None
    assert [(m.sid, m.to, m.from_, m.body) for m in fake.messages] == [(msg.sid, TO, FROM, "测试")]
    assert fake.rejected == []


async def test_the_sdk_lists_messages_newest_first_and_filters_by_recipient(
    fake: FakeTwilio, client: Client
) -> None:
    first = await client.messages.create_async(to=TO, from_=FROM, body="one")
    second = await client.messages.create_async(to=TO, from_=FROM, body="two")
    await client.messages.create_async(to="+8613800000002", from_=FROM, body="other")
    listed = await client.messages.list_async(to=TO, page_size=1)
    assert [m.sid for m in listed] == [second.sid, first.sid]
    assert fake.rejected == []


async def test_fetching_an_unknown_message_raises_20404(client: Client) -> None:
    with pytest.raises(TwilioRestException) as caught:
        await client.messages("SM" + "0" * 32).fetch_async()
    assert (caught.value.status, caught.value.code) == (404, 20404)


async def test_a_wrong_auth_token_makes_the_sdk_raise_20003(fake: FakeTwilio) -> None:
    async with sdk(fake, "wrong-token") as wrong:
        with pytest.raises(TwilioRestException) as caught:
            await wrong.messages.create_async(to=TO, from_=FROM, body="hi")
    assert (caught.value.status, caught.value.code) == (401, 20003)
    assert [(r.status, r.code) for r in fake.rejected] == [(401, 20003)]
    assert fake.messages == []


@pytest.mark.parametrize(
    ("form", "code", "mentions"),
    [
        ({"To": TO}, 21603, "From, MessagingServiceSid"),
        ({"To": TO, "From": FROM}, 21602, "Body, MediaUrl, ContentSid"),
        ({"From": FROM, "Body": "hi"}, 21604, "To"),
        ({"To": TO, "From": FROM, "Body": "hi", "MaxPrice": "cheap"}, 70002, "number"),
        ({"To": TO, "MessagingServiceSid": "MG123", "Body": "hi"}, 70002, "MG123"),
        ({}, 21604, "To"),
    ],
)
async def test_an_invalid_message_is_rejected_by_the_spec_with_a_twilio_error(
    fake: FakeTwilio, form: dict[str, str], code: int, mentions: str
) -> None:
    status, body = await raw(fake, "POST", MESSAGES, form)
    assert (status, body["code"], body["status"]) == (400, code, 400)
    assert mentions in body["message"]
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert [(r.code, r.form) for r in fake.rejected] == [(code, form)]
    assert fake.messages == []


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", f"/2010-04-01/Accounts/{ACCOUNT}/Queues.json", 20404),
        ("DELETE", MESSAGES, 20404),
        ("GET", "/2010-04-01/Accounts/ACnot-a-sid/Messages.json", 70002),
        ("GET", f"/2010-04-01/Accounts/{ACCOUNT}/Messages/not-a-sid.json", 70002),
        ("GET", MESSAGES + "?PageSize=many", 70002),
    ],
)
async def test_unknown_paths_and_malformed_parameters_are_rejected(
    fake: FakeTwilio, method: str, path: str, code: int
) -> None:
    status, body = await raw(fake, method, path)
    assert (status, body["code"]) == (400, code)
    assert [(r.method, r.code) for r in fake.rejected] == [(method, code)]


async def test_an_endpoint_in_the_spec_but_not_served_answers_405(fake: FakeTwilio) -> None:
    status, body = await raw(fake, "DELETE", CALLS.replace(".json", "/CA" + "0" * 32 + ".json"))
    assert (status, body["code"]) == (405, 20004)
    assert len(fake.rejected) == 1


async def test_the_sdk_lists_calls_newest_first_filtered_by_recipient_and_caller(
    fake: FakeTwilio, client: Client
) -> None:
    twiml = "<Response><Say>测试</Say></Response>"
    first = await client.calls.create_async(to=TO, from_=FROM, twiml=twiml)
    second = await client.calls.create_async(to=TO, from_=FROM, twiml=twiml)
    await client.calls.create_async(to="+8613800000002", from_=FROM, twiml=twiml)
    await client.calls.create_async(to=TO, from_="+15005550009", twiml=twiml)
    listed = await client.calls.list_async(to=TO, from_=FROM, page_size=1)
    assert [c.sid for c in listed] == [second.sid, first.sid]
    assert all(c.date_created is not None and c.status == "queued" for c in listed)
    assert fake.rejected == []


async def test_another_accounts_path_is_refused_even_with_valid_credentials(
    fake: FakeTwilio,
) -> None:
    status, body = await raw(fake, "GET", MESSAGES.replace(ACCOUNT, "AC" + "b" * 32))
    assert (status, body["code"]) == (401, 20003)


async def test_fail_next_21211_surfaces_as_the_sdk_exception_code(
    fake: FakeTwilio, client: Client
) -> None:
    fake.fail_next(21211, 400)
    with pytest.raises(TwilioRestException) as caught:
        await client.messages.create_async(to=TO, from_=FROM, body="hi")
    assert (caught.value.status, caught.value.code) == (400, 21211)
    assert TO in caught.value.msg
    await client.messages.create_async(to=TO, from_=FROM, body="hi")
    assert len(fake.messages) == 1 and fake.rejected == []


async def test_fail_next_20429_answers_429_for_the_given_number_of_creates(
    fake: FakeTwilio, client: Client
) -> None:
    fake.fail_next(20429, 429, count=2)
    for _ in range(2):
        with pytest.raises(TwilioRestException) as caught:
            await client.calls.create_async(to=TO, from_=FROM, twiml="<Response/>")
        assert (caught.value.status, caught.value.code) == (429, 20429)
    await client.calls.create_async(to=TO, from_=FROM, twiml="<Response/>")
    assert len(fake.calls) == 1


async def test_fail_for_fails_every_create_to_that_number_only(
    fake: FakeTwilio, client: Client
) -> None:
    fake.fail_for(TO, 20500, 500)
    for _ in range(2):
        with pytest.raises(TwilioRestException) as caught:
            await client.messages.create_async(to=TO, from_=FROM, body="hi")
        assert (caught.value.status, caught.value.code) == (500, 20500)
    await client.messages.create_async(to="+8613800000002", from_=FROM, body="hi")
    assert [m.to for m in fake.messages] == ["+8613800000002"]


async def test_a_chinese_body_of_80_characters_takes_two_segments(client: Client) -> None:
    msg = await client.messages.create_async(to=TO, from_=FROM, body="雨" * 80)
    assert msg.num_segments == "2"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("雨" * 70, 1),
        ("雨" * 71, 2),
        ("雨" * 134, 2),
        ("雨" * 135, 3),
        ("a" * 68 + "👍", 1),  # an emoji is two UTF-16 code units
        ("a" * 69 + "👍", 2),
    ],
)
def test_segments_follow_gsm7_and_ucs2_limits(body: str, expected: int) -> None:
    assert segments(body) == expected


async def test_a_status_callback_is_signed_and_verifies_with_request_validator() -> None:
    received: asyncio.Queue[tuple[str, dict[str, str], str]] = asyncio.Queue()

    async def receive(request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        await received.put((str(request.url), form, request.headers["X-Twilio-Signature"]))
        return web.Response()

    receiver = web.Application()
    receiver.router.add_post("/status", receive)
    runner = web.AppRunner(receiver)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    callback = f"http://127.0.0.1:{runner.addresses[0][1]}/status"
    try:
        async with (
            FakeTwilio(ACCOUNT, TOKEN, send_status_callbacks=True) as fake,
            sdk(fake, TOKEN) as client,
        ):
            msg = await client.messages.create_async(
                to=TO, from_=FROM, body="hi", status_callback=callback
            )
            url, form, signature = await asyncio.wait_for(received.get(), timeout=5)
            fetched = await client.messages(msg.sid).fetch_async()
    finally:
        await runner.cleanup()
    assert RequestValidator(TOKEN).validate(url, form, signature)
    assert not RequestValidator("another-token").validate(url, form, signature)
    assert form["MessageSid"] == msg.sid and form["MessageStatus"] == "delivered"
    assert fetched.status == "delivered"


async def test_on_message_runs_after_the_201_with_the_accepted_record() -> None:
    seen: asyncio.Queue[FakeMessage] = asyncio.Queue()
    async with FakeTwilio(ACCOUNT, TOKEN, on_message=seen.put) as fake, sdk(fake, TOKEN) as sdk_:
        msg = await sdk_.messages.create_async(to=TO, from_=FROM, body="请回复1确认")
        record = await asyncio.wait_for(seen.get(), timeout=5)
    assert (record.sid, record.to, record.from_, record.body) == (msg.sid, TO, FROM, "请回复1确认")


async def test_closing_cancels_background_tasks() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hang(message: FakeMessage) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with FakeTwilio(ACCOUNT, TOKEN, on_message=hang) as fake, sdk(fake, TOKEN) as client:
        await client.messages.create_async(to=TO, from_=FROM, body="hi")
        await asyncio.wait_for(started.wait(), timeout=5)
    assert cancelled.is_set()


async def test_a_call_is_created_with_twiml_and_fetched(fake: FakeTwilio, client: Client) -> None:
    twiml = "<Response><Say language='zh-CN'>暴雨红色预警</Say></Response>"
    call = await client.calls.create_async(to=TO, from_=FROM, twiml=twiml)
    fetched = await client.calls(call.sid).fetch_async()
    assert call.sid.startswith("CA") and len(call.sid) == 34
    assert (fetched.sid, fetched.to, fetched.status) == (call.sid, TO, "queued")
    assert [(c.sid, c.twiml) for c in fake.calls] == [(call.sid, twiml)]
    assert fake.rejected == []


async def test_a_call_without_url_twiml_or_application_sid_is_rejected(
    fake: FakeTwilio,
) -> None:
    status, body = await raw(fake, "POST", CALLS, {"To": TO, "From": FROM})
    assert (status, body["code"]) == (400, 21205)
    assert "Url, Twiml, ApplicationSid" in body["message"]
    assert fake.calls == []


async def test_the_fakes_own_answers_match_the_spec_schemas(fake: FakeTwilio) -> None:
    form = {"To": TO, "From": FROM, "Body": "hi", "MediaUrl": "https://example.org/a.png"}
    answers = [("POST", MESSAGES, await raw(fake, "POST", MESSAGES, form))]
    sid = answers[0][2][1]["sid"]
    message = f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"
    answers += [("GET", path, await raw(fake, "GET", path)) for path in (message, MESSAGES)]
    call_form = {"To": TO, "From": FROM, "Url": "https://example.org/twiml"}
    answers.append(("POST", CALLS, await raw(fake, "POST", CALLS, call_form)))
    answers.append(("GET", CALLS, await raw(fake, "GET", CALLS)))
    for method, path, (status, body) in answers:
        response = twilio_spec.SpecResponse(status, json.dumps(body).encode())
        assert twilio_spec.response_problems(method, path, response) == [], (method, path)
    assert sid.startswith("MM") and fake.rejected == []


def test_every_conditional_rule_in_the_spec_names_real_form_fields() -> None:
    spec = twilio_spec.load().raw
    for template in (twilio_spec.MESSAGES, twilio_spec.CALLS):
        operation = spec["paths"][template]["post"]
        form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]
        fields = form["schema"]["properties"]
        groups = twilio_spec.conditionals(template, "post")
        assert groups, template
        assert all(twilio_spec.form_field(member) in fields for group in groups for member in group)
