"""A local stand-in for Twilio's REST API (SMS and voice) for the demo and the tests.

warnbot's channel talks to Twilio through the official SDK; pointing the SDK's
``client.api.base_url`` at this server exercises that real code path without a
network, an account or cost. Each request is checked against Twilio's OpenAPI
description (:mod:`warnbot.fakes.twilio_spec`) so a request the real API would
refuse is refused here too, and recorded in :attr:`FakeTwilio.rejected`.

Usage::

    async with FakeTwilio(account_sid, auth_token) as fake:
        client.api.base_url = fake.base_url
        ...
        assert not fake.rejected
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Self

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from warnbot.fakes import twilio_spec
from warnbot.fakes.twilio_spec import CALL, CALLS, MESSAGE, MESSAGES
from warnbot.sms import segments

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
ACCOUNT_SID_PATTERN = r"AC[0-9a-fA-F]{32}"

#: Messages Twilio sends with the error codes tests commonly inject.
ERROR_MESSAGES = {
    20003: "Authenticate",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    21211: "The 'To' number {to} is not a valid phone number.",
    21610: "Attempt to send to unsubscribed recipient",
}


def rfc2822(moment: datetime) -> str:
    """Twilio's date format, e.g. ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    return format_datetime(moment)


def new_sid(prefix: str) -> str:
    """A random SID shaped like Twilio's: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


@dataclass
class FakeMessage:
    """One accepted Message create; ``params`` keeps every form field as sent."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str | None
    messaging_service_sid: str | None
    media_url: list[str]
    status_callback: str | None
    params: dict[str, str]
    status: str = "queued"
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    error_code: int | None = None  # set when a delivery fails (undelivered, failed)

    @property
    def num_segments(self) -> int:
        """Parts billed for the body (at least one)."""
        return segments(self.body or "")


@dataclass
class FakeCall:
    """One accepted Call create; ``params`` keeps every form field as sent."""

    sid: str
    account_sid: str
    to: str
    from_: str
    url: str | None
    twiml: str | None
    application_sid: str | None
    status_callback: str | None
    params: dict[str, str]
    status: str = "queued"
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class Rejection:
    """A request the fake refused before any handler ran (auth, spec or routing)."""

    method: str
    path: str
    status: int
    code: int
    message: str
    form: dict[str, str]


@dataclass(frozen=True)
class TwilioError:
    """An error as Twilio answers it; the SDK raises it with this ``code``."""

    status: int
    code: int
    message: str = ""
    retry_after_s: int | None = None

    def response(self) -> web.Response:
        """Twilio's error body, e.g. ``{"code": 21211, "message": …, "status": 400}``,
        with a ``Retry-After`` header when one is set."""
        info = f"https://www.twilio.com/docs/errors/{self.code}"
        body = {"code": self.code, "message": self.message, "more_info": info}
        headers = {"Retry-After": str(self.retry_after_s)} if self.retry_after_s is not None else {}
        body |= {"status": self.status}
        return web.json_response(body, status=self.status, headers=headers)


@dataclass(frozen=True)
class Faults:
    """Provider faults to inject into Message creates, each a fraction of requests:
    HTTP 500 (20500); HTTP 429 (20429) with ``Retry-After: retry_after_s``; answers
    delayed by ``slow_s``; connections reset before the message is taken; and
    ``lost_answer``: the message is taken, then the connection is reset, so the sender
    cannot know (the case reconciliation exists for). ``seed`` makes a run repeatable."""

    error_500: float = 0.0
    error_429: float = 0.0
    retry_after_s: int = 1
    slow: float = 0.0
    slow_s: float = 0.5
    reset: float = 0.0
    lost_answer: float = 0.0
    seed: int | None = None

    def draw(self, rng: random.Random) -> str | None:
        """Which fault this request gets, if any."""
        roll = rng.random()
        for name in ("error_500", "error_429", "slow", "reset", "lost_answer"):
            share: float = getattr(self, name)
            if roll < share:
                return name
            roll -= share
        return None


MessageHook = Callable[[FakeMessage], Awaitable[None]]


def message_json(message: FakeMessage) -> dict[str, Any]:
    """A Message resource: every field of the spec's schema, null where unknown."""
    uri = f"/{API_VERSION}/Accounts/{message.account_sid}/Messages/{message.sid}"
    date = rfc2822(message.created)
    return twilio_spec.null_resource("api.v2010.account.message") | {
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body or "",
        "date_created": date,
        "date_sent": None if message.status == "queued" else date,
        "date_updated": date,
        "direction": "outbound-api",
        "from": message.from_,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": str(len(message.media_url)),
        "num_segments": str(message.num_segments),
        "price_unit": "USD",
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": message.to,
        "uri": f"{uri}.json",
    }


def call_json(call: FakeCall) -> dict[str, Any]:
    """A Call resource: every field of the spec's schema, null where a fake can't know."""
    uri = f"/{API_VERSION}/Accounts/{call.account_sid}/Calls/{call.sid}"
    date = rfc2822(call.created)
    return twilio_spec.null_resource("api.v2010.account.call") | {
        "sid": call.sid,
        "account_sid": call.account_sid,
        "api_version": API_VERSION,
        "date_created": date,
        "date_updated": date,
        "direction": "outbound-api",
        "from": call.from_,
        "from_formatted": call.from_,
        "price_unit": "USD",
        "queue_time": "0",
        "status": call.status,
        "subresource_uris": {"recordings": f"{uri}/Recordings.json"},
        "to": call.to,
        "to_formatted": call.to,
        "uri": f"{uri}.json",
    }


def page_json(
    request: web.Request,
    found: Sequence[Any],
    key: str = "messages",
    render: Callable[[Any], dict[str, Any]] = message_json,
) -> dict[str, Any]:
    """One page of a Message (or, with ``key`` "calls", a Call) list, with Twilio's
    paging fields."""
    size = int(request.query.get("PageSize", "50"))
    page = int(request.query.get("Page", "0"))
    start = page * size
    items = found[start : start + size]
    more = start + size < len(found)
    return {
        key: [render(item) for item in items],
        "page": page,
        "page_size": size,
        "start": start,
        "end": start + max(len(items) - 1, 0),
        "uri": str(request.rel_url),
        "first_page_uri": page_uri(request, size, 0),
        "next_page_uri": page_uri(request, size, page + 1) if more else None,
        "previous_page_uri": page_uri(request, size, page - 1) if page else None,
    }


def page_uri(request: web.Request, size: int, page: int) -> str:
    """Another page of the same listing; the SDK follows these, filters included."""
    return str(request.rel_url.update_query(PageSize=size, Page=page))


def matches(message: FakeMessage | FakeCall, query: Mapping[str, str]) -> bool:
    """The list endpoints' ``To``/``From`` filters."""
    own = {"To": message.to, "From": message.from_}
    return all(query.get(key, value) == value for key, value in own.items())


async def sent(request: web.Request, status: int, body: dict[str, Any]) -> web.Response:
    """Write a JSON response to the socket now, so hooks run strictly after it."""
    response = web.json_response(body, status=status)
    await response.prepare(request)
    await response.write_eof()
    return response


def not_found(request: web.Request) -> web.Response:
    """Twilio's 404 for a well-formed SID nobody created."""
    message = f"The requested resource {request.path} was not found"
    return TwilioError(404, 20404, message).response()


async def form_of(request: web.Request) -> MultiDict[str]:
    """The urlencoded form, text fields only (Twilio takes no uploads)."""
    posted = await request.post()
    return MultiDict((key, value) for key, value in posted.items() if isinstance(value, str))


class FakeTwilio:
    """Twilio's Messages and Calls endpoints on ``127.0.0.1``, with test hooks.

    ``send_status_callbacks``: after a create, mark the message ``delivered``
    (or ``undelivered`` with the code given by ``undeliverable``) and, when it has a
    ``StatusCallback``, POST Twilio's signed status callback to it. Off by default so
    a message's status stays ``queued`` deterministically. ``callback_first``: the
    callback is answered before the create's own answer is written, as a provider
    whose callbacks overtake its API answers does. ``on_message`` runs as a
    background task after the 201 was written.
    """

    def __init__(
        self,
        account_sid: str = "AC" + "a" * 32,
        auth_token: str = "fake-auth-token",
        *,
        send_status_callbacks: bool = False,
        callback_first: bool = False,
        on_message: MessageHook | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        validate: bool = True,
        keep: bool = True,
        faults: Faults | None = None,
    ) -> None:
        if re.fullmatch(ACCOUNT_SID_PATTERN, account_sid) is None:
            raise ValueError(f"account_sid must match {ACCOUNT_SID_PATTERN}: {account_sid!r}")
        self.account_sid, self.auth_token = account_sid, auth_token
        self.send_status_callbacks, self.on_message = send_status_callbacks, on_message
        self.callback_first = callback_first
        self._undeliverable: dict[str, int] = {}
        self.host, self.port, self.base_url = host, port, ""
        # Benchmarks only: skip the OpenAPI check (~6 ms a request) and keep a count,
        # not every message, so the fake is not what is measured.
        self.validate, self.keep, self.accepted = validate, keep, 0
        self.messages: list[FakeMessage] = []
        self.calls: list[FakeCall] = []
        self.rejected: list[Rejection] = []
        self.faults = faults
        self.faulted: dict[str, int] = {}  # fault name -> how many were injected
        self.creates = 0  # Message create requests that passed the guard, faulted or not
        self.create_log: list[tuple[float, str]] = []  # (time.time(), To) of each of them
        self._rng = random.Random(faults.seed if faults else None)
        self.app = self._build_app()
        self._failures: deque[TwilioError] = deque()
        self._failures_for: dict[tuple[str, str], TwilioError] = {}  # (to, "messages"|"calls")
        self._tasks: set[asyncio.Future[None]] = set()
        self._answering = asyncio.Event()
        self._answering.set()
        self.held = 0  # messages taken whose answer waited for release_answers()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Load the spec (once per process, off the loop), then listen on ``host``:``port``.
        Answers need it even unvalidated (their fields): loaded lazily, the first
        request would stall the fake for a second and bunch the requests behind it."""
        await asyncio.to_thread(twilio_spec.load)
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://{self.host}:{self.port}"
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        """Stop serving (so no new hooks start), cancel pending hooks and callbacks."""
        if self._runner is not None:
            await self._runner.cleanup()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def fail_next(
        self, code: int, status: int, count: int = 1, retry_after_s: int | None = None
    ) -> None:
        """Make the next ``count`` valid creates (messages or calls) fail with ``code``
        (and a ``Retry-After`` header of ``retry_after_s``)."""
        self._failures.extend([TwilioError(status, code, retry_after_s=retry_after_s)] * count)

    def fail_for(self, to: str, code: int, status: int, only: str | None = None) -> None:
        """Make every create addressed to ``to`` fail with ``code``; ``only`` "messages"
        or "calls" limits it to one kind (a landline refuses SMS and takes calls)."""
        for kind in (only,) if only else ("messages", "calls"):
            self._failures_for[(to, kind)] = TwilioError(status, code)

    def undeliverable(self, to: str, code: int) -> None:
        """Take messages to ``to`` but report them ``undelivered`` with ``code`` (30006:
        a landline), as the handset's network later tells Twilio."""
        self._undeliverable[to] = code

    def hold_answers(self) -> None:
        """Take messages but keep each sender waiting for its answer, as a provider
        stalling under load does: the sender's rows stay in doubt until it hears."""
        self._answering.clear()

    def release_answers(self) -> None:
        self._answering.set()

    def _build_app(self) -> web.Application:
        """Routes use the spec's path templates verbatim."""
        app = web.Application(middlewares=[self._guard])
        app.router.add_post(MESSAGES, self._create_message)
        app.router.add_get(MESSAGES, self._list_messages)
        app.router.add_get(MESSAGE, self._fetch_message)
        app.router.add_post(CALLS, self._create_call)
        app.router.add_get(CALLS, self._list_calls)
        app.router.add_get(CALL, self._fetch_call)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refuse (and record) what Twilio would refuse before any handler runs."""
        refusal = await self._refusal(request)
        if refusal is None:
            try:
                return await handler(request)
            except web.HTTPException as exc:  # allowed by the spec, not served here
                code = 20004 if exc.status == 405 else 20404
                refusal = TwilioError(exc.status, code, f"{exc.reason}: {request.path}")
        form = dict(await form_of(request)) if request.method == "POST" else {}
        error = (refusal.status, refusal.code, refusal.message)
        self.rejected.append(Rejection(request.method, request.path, *error, form))
        return refusal.response()

    async def _refusal(self, request: web.Request) -> TwilioError | None:
        """Credentials first (as Twilio does), then the spec, then the account."""
        if not self._authorized(request):
            return TwilioError(401, 20003, "Authenticate")
        problem = (
            twilio_spec.check(await twilio_spec.from_aiohttp(request)) if self.validate else None
        )
        if problem is not None:
            return TwilioError(400, problem.code, problem.message)
        if request.match_info.get("AccountSid", self.account_sid) != self.account_sid:
            return TwilioError(401, 20003, "Authenticate")
        return None

    def _authorized(self, request: web.Request) -> bool:
        """HTTP Basic credentials must be exactly this account's SID and token."""
        expected = aiohttp.encode_basic_auth(self.account_sid, self.auth_token)
        given = request.headers.get("Authorization", "")
        return secrets.compare_digest(given.encode(), expected.encode())

    def _injected(self, to: str, kind: str) -> web.Response | None:
        """An injected failure for this create, consuming a ``fail_next`` one."""
        failure = self._failures_for.get((to, kind)) or (
            self._failures.popleft() if self._failures else None
        )
        if failure is None:
            return None
        template = ERROR_MESSAGES.get(failure.code, "Injected failure {code}")
        message = template.format(to=to, code=failure.code)
        return dataclasses.replace(failure, message=message).response()

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        form = await form_of(request)
        self.creates += 1
        self.create_log.append((time.time(), form["To"]))
        fault = self.faults.draw(self._rng) if self.faults else None
        if fault is not None:
            self.faulted[fault] = self.faulted.get(fault, 0) + 1
            if (early := await self._fault(request, fault)) is not None:
                return early
        injected = self._injected(form["To"], "messages")
        if injected is not None:
            return injected
        message = FakeMessage(
            sid=new_sid("MM" if "MediaUrl" in form else "SM"),
            account_sid=self.account_sid,
            to=form["To"],
            from_=form.get("From"),
            body=form.get("Body"),
            messaging_service_sid=form.get("MessagingServiceSid"),
            media_url=form.getall("MediaUrl", []),
            status_callback=form.get("StatusCallback"),
            params=dict(form),
        )
        self.accepted += 1
        if self.keep:
            self.messages.append(message)
        if fault == "lost_answer":
            return _reset(request)
        if not self._answering.is_set():
            self.held += 1
            await self._answering.wait()
        if self.send_status_callbacks and self.callback_first:
            await self._deliver(message)
        try:
            return await sent(request, 201, message_json(message))
        finally:  # taken even when the sender died before reading the answer
            self._after_message(message)

    async def _fault(self, request: web.Request, fault: str) -> web.StreamResponse | None:
        """The answer an injected fault gives before the message is taken; None to go on."""
        assert self.faults is not None
        if fault == "error_500":
            return TwilioError(500, 20500, ERROR_MESSAGES[20500]).response()
        if fault == "error_429":
            retry_after_s = self.faults.retry_after_s
            return TwilioError(429, 20429, ERROR_MESSAGES[20429], retry_after_s).response()
        if fault == "reset":
            return _reset(request)
        if fault == "slow":
            await asyncio.sleep(self.faults.slow_s)
        return None

    async def _fetch_message(self, request: web.Request) -> web.StreamResponse:
        found = [m for m in self.messages if m.sid == request.match_info["Sid"]]
        return web.json_response(message_json(found[0])) if found else not_found(request)

    async def _list_messages(self, request: web.Request) -> web.StreamResponse:
        """Newest first, as Twilio lists them."""
        chosen = [m for m in reversed(self.messages) if matches(m, request.query)]
        return web.json_response(page_json(request, chosen))

    async def _create_call(self, request: web.Request) -> web.StreamResponse:
        form = await form_of(request)
        injected = self._injected(form["To"], "calls")
        if injected is not None:
            return injected
        call = FakeCall(
            sid=new_sid("CA"),
            account_sid=self.account_sid,
            to=form["To"],
            from_=form["From"],
            url=form.get("Url"),
            twiml=form.get("Twiml"),
            application_sid=form.get("ApplicationSid"),
            status_callback=form.get("StatusCallback"),
            params=dict(form),
        )
        self.calls.append(call)
        return web.json_response(call_json(call), status=201)

    async def _list_calls(self, request: web.Request) -> web.StreamResponse:
        """Newest first, filtered by ``To``/``From``, as Twilio lists calls."""
        chosen = [c for c in reversed(self.calls) if matches(c, request.query)]
        return web.json_response(page_json(request, chosen, "calls", call_json))

    async def _fetch_call(self, request: web.Request) -> web.StreamResponse:
        found = [c for c in self.calls if c.sid == request.match_info["Sid"]]
        return web.json_response(call_json(found[0])) if found else not_found(request)

    def _after_message(self, message: FakeMessage) -> None:
        """Start the post-201 work: delivery (if enabled) and the ``on_message`` hook."""
        if self.send_status_callbacks and not self.callback_first:
            self._spawn(self._deliver(message))
        if self.on_message is not None:
            self._spawn(self.on_message(message))

    def _spawn(self, work: Awaitable[None]) -> None:
        """Track a background task so ``close`` can cancel it."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Future[None]) -> None:
        """Forget the task; log its failure instead of losing it."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("fake Twilio background task failed", exc_info=task.exception())

    async def _deliver(self, message: FakeMessage) -> None:
        """Mark the message delivered (or undelivered) and tell its StatusCallback,
        signed like Twilio."""
        message.error_code = self._undeliverable.get(message.to)
        message.status = "delivered" if message.error_code is None else "undelivered"
        if message.status_callback is not None:
            await self._post_signed(message.status_callback, status_params(message))

    async def _post_signed(self, url: str, params: dict[str, str]) -> None:
        """POST ``params`` with ``X-Twilio-Signature`` so receivers can verify it."""
        assert self._session is not None, "start() first"
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        headers = {"X-Twilio-Signature": signature}
        async with self._session.post(url, data=params, headers=headers) as response:
            await response.read()


def _reset(request: web.Request) -> web.StreamResponse:
    """Drop the connection without an answer, as a reset on the way would."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)


def status_params(message: FakeMessage) -> dict[str, str]:
    """The form fields of Twilio's message status callback."""
    params = {
        "AccountSid": message.account_sid,
        "ApiVersion": API_VERSION,
        "MessageSid": message.sid,
        "MessageStatus": message.status,
        "SmsSid": message.sid,
        "SmsStatus": message.status,
        "To": message.to,
    }
    if message.from_ is not None:
        params["From"] = message.from_
    if message.error_code is not None:
        params["ErrorCode"] = str(message.error_code)
    return params
