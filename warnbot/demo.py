"""``warnbot demo``: the whole 叫应 loop, offline, in about ten seconds: answers by
SMS, link and voice keypad, and the ladder climbed to the end — reminder, call,
superior, duty officer, unreachable.

Real parts throughout: the bundled CAP feed is polled by the scheduler, the
store is SQLite in a temporary directory, messages go through the official
Twilio SDK over HTTP to a local fake Twilio, and the simulated responders
answer through the real signed webhook or the signed link page. Only the
people are pretend (``config/demo/responders.yaml`` says who answers how).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from warnbot import board, log, schedule
from warnbot.app import App, build
from warnbot.fakes.twilio import FakeTwilio
from warnbot.model import Incident, Request, Responder, Step
from warnbot.resources import bundled
from warnbot.settings import Settings, load_settings
from warnbot.web import make_app

TIMEOUT_S = 50.0
_LINK = re.compile(r"https?://\S+/a/[0-9a-z]+\.[\w-]+")
_KEYPAD = re.compile(r'action="https?://[^/"]+(/hooks/twilio/voice/[^"]+)"')


async def run_demo(config: Path | None = None) -> int:
    """Run the demo; 0 when the loop completed, 1 when it timed out."""
    log.configure("console", level=logging.WARNING)
    path = config or bundled("config") / "demo" / "warnbot.toml"
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="warnbot-demo-") as tmp:
        base = load_settings(path, database_url=f"sqlite+aiosqlite:///{tmp}/demo.db")
        async with FakeTwilio(account_sid=base.twilio.account_sid, auth_token=token) as fake:
            settings = _with_fake(base, fake.base_url, token)
            behaviours = yaml.safe_load((path.parent / "responders.yaml").read_text("utf-8"))
            return await _run(settings, fake, behaviours, tmp)


def _with_fake(settings: Settings, base_url: str, token: str) -> Settings:
    twilio = settings.twilio.model_copy(
        update={"api_base_url": base_url, "auth_token": SecretStr(token)}
    )
    return settings.model_copy(update={"twilio": twilio})


async def _run(settings: Settings, fake: FakeTwilio, behaviours: dict[str, Any], tmp: str) -> int:
    app = build(settings)
    printer = Printer()
    app.observers.append(printer)
    await app.start()
    runner = web.AppRunner(make_app(app))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    app.public_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    print(
        f"warnbot 演示 demo — 离线 offline · SQLite {tmp}/demo.db · 模拟 Twilio {fake.base_url}"
        f" · webhooks {app.public_url}"
    )
    try:
        async with aiohttp.ClientSession() as session:
            people = Simulator(app, session, behaviours, settings, printer, fake)
            fake.on_message = people.on_message
            jobs = schedule.Schedule(app, session)
            jobs.start()
            try:
                done = await _wait(app, people)
            finally:
                await jobs.stop()
                await people.aclose()
        return _report(await _final_tallies(app), done)
    finally:
        await runner.cleanup()
        await app.stop()


async def _wait(app: App, people: Simulator) -> bool:
    """Until every request is answered or given up on and nothing is in flight."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        await people.answer_calls()
        requests = await _all_requests(app)
        settled = requests and all(r.status in ("confirmed", "unreachable") for r in requests)
        counts = await app.store.outbox_counts()
        if settled and not people.busy() and not counts.get("queued") and not counts.get("sending"):
            return True
    return False


async def _all_requests(app: App) -> list[Request]:
    incidents = [i for i, _ in await app.store.open_incidents()]
    return [r for i in incidents for r in await app.store.requests_of(i.id)]


async def _final_tallies(app: App) -> list[board.TierTally]:
    return board.tally(await _all_requests(app), app.clock())


def _report(tallies: list[board.TierTally], done: bool) -> int:
    print()
    print("\n".join(board.lines(tallies)))
    if not done:
        print(f"演示超时 demo timed out after {TIMEOUT_S:.0f}s")
    print(board.summary(tallies))
    return 0 if done else 1


class Printer:
    """Prints what the app observes, with seconds since the demo started."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:5.1f}s] {text}")

    def __call__(self, event: str, fields: dict[str, Any]) -> None:
        handler = getattr(self, f"_{event}", None)
        if handler is not None:
            handler(**fields)

    def _opened(self, incident: Incident, reason: str) -> None:
        self.say(
            f"启动响应 incident opened: {incident.level.roman}级 {incident.hazard} "
            f"@{incident.region_code} — {incident.headline} ({reason})"
        )

    def _requested(
        self, incident: Incident, requests: list[Request], people: dict[str, Responder]
    ) -> None:
        per_tier = board.tally(requests, incident.opened_at)
        text = " · ".join(f"{t.tier.zh} {t.tier.value} {t.total}" for t in per_tier)
        self.say(f"叫应 asking {len(requests)} people to confirm: {text}")

    def _confirmed(self, request: Request, late: bool, person: Responder | None) -> None:
        who = f"{person.name} {person.tier.zh}" if person else request.responder_key
        self.say(f"✔ 确认 confirmed: {who}{' 迟到 late' if late else ''}")

    def _arrived(self, request: Request, late: bool, person: Responder | None) -> None:
        who = person.name if person else request.responder_key
        self.say(f"✔ 到岗 arrived: {who}{' 超时 late' if late else ''}")

    def _told_lifted(self, incident: Incident, count: int) -> None:
        self.say(f"解除 lifted: {count} people told")

    def _told_upgraded(self, incident: Incident, count: int) -> None:
        self.say(f"升级 upgraded to {incident.level.roman}: {count} people told")

    def _escalated(self, step: Step, people: dict[str, Responder]) -> None:
        who = people[step.responder_key].name if step.responder_key in people else "?"
        if step.kind == "repeat":
            self.say(f"↻ 再次提醒 reminder #{step.n}: {who}")
        elif step.kind == "voice":
            self.say(f"☎ 语音呼叫 voice call #{step.n}: {who}")
        elif step.kind == "duty_officer":
            self.say(f"⚠ 仍未应答，告知值班员 still silent, duty officer told: {who}")
        elif step.kind == "unreachable":
            self.say(f"✖ 无法联系 unreachable: {who}")
        else:
            target = people[step.target_key].name if step.target_key in people else "值班员 duty"
            self.say(f"⚠ 未应答上报 silent: {who} → {target}")


class Simulator:
    """Pretend responders: each answers its first request as its behaviour says."""

    def __init__(
        self,
        app: App,
        session: aiohttp.ClientSession,
        behaviours: dict[str, Any],
        settings: Settings,
        printer: Printer,
        fake: FakeTwilio,
    ) -> None:
        self.app, self.session, self.behaviours, self.printer = app, session, behaviours, printer
        self.fake, self.calls_seen = fake, 0
        self.validator = RequestValidator(
            settings.twilio.auth_token.get_secret_value() if settings.twilio.auth_token else ""
        )
        self.from_number = settings.twilio.from_number
        self.answered: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def busy(self) -> bool:
        return any(not t.done() for t in self.tasks)

    async def on_message(self, record: Any) -> None:
        person = self._person(record.to)
        name = person.name if person else record.to
        self.printer.say(f"→ 短信 SMS {name}: {record.body}")
        link = _LINK.search(record.body or "")
        if person is None or link is None or person.key in self.answered:
            return
        self.answered.add(person.key)
        task = asyncio.create_task(self._answer(person, link.group(0)))
        self.tasks.add(task)

    async def answer_calls(self) -> None:
        """Ring each new call; those whose behaviour is ``voice`` press 1."""
        for call in self.fake.calls[self.calls_seen :]:
            self.calls_seen += 1
            person = self._person(call.to)
            hook = _KEYPAD.search(call.twiml or "")
            self.printer.say(f"☎ 来电 call rings: {person.name if person else call.to}")
            behaviour = self.behaviours.get(person.key, {}) if person else {}
            if person is not None and hook is not None and behaviour.get("via") == "voice":
                self.answered.add(person.key)
                task = asyncio.create_task(self._press(person, hook.group(1), behaviour))
                self.tasks.add(task)

    async def _press(self, person: Responder, path: str, behaviour: dict[str, Any]) -> None:
        await asyncio.sleep(float(behaviour["after_s"]))
        url = f"{self.app.public_url}{path}"
        form = {"CallSid": "CA" + secrets.token_hex(16), "Digits": "1"}
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, form)}
        self.printer.say(f"← 按键 keypad {person.name}: 1")
        async with self.session.post(url, data=form, headers=headers) as resp:
            resp.raise_for_status()

    def _person(self, phone: str) -> Responder | None:
        return next((p for p in self.app.people.values() if phone in p.phones), None)

    async def _answer(self, person: Responder, link: str) -> None:
        behaviour = self.behaviours.get(person.key, {"via": "never"})
        if behaviour["via"] in ("never", "voice"):
            return
        await asyncio.sleep(float(behaviour["after_s"]))
        if behaviour["via"] == "link":
            await self._click(person, link)
        else:
            await self._text(person, str(behaviour["reply"]))

    async def _text(self, person: Responder, body: str) -> None:
        url = f"{self.app.public_url}/hooks/twilio/sms"
        form = {
            "From": person.phones[0],
            "To": self.from_number,
            "Body": body,
            "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": self.app.settings.twilio.account_sid,
        }
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, form)}
        self.printer.say(f"← 回复 reply {person.name}: {body!r}")
        async with self.session.post(url, data=form, headers=headers) as resp:
            resp.raise_for_status()

    async def _click(self, person: Responder, link: str) -> None:
        self.printer.say(f"← 点击链接 link {person.name}: {link.rsplit('/', 1)[-1]}")
        async with self.session.get(link) as page:
            page.raise_for_status()
        async with self.session.post(link) as resp:
            resp.raise_for_status()

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
