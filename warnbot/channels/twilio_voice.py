"""Twilio voice calls: read the warning in Mandarin and ask for 1 to confirm.

叫应必答: red and orange warnings are followed by automatic calls until the
official answers. The call's TwiML reads the message (Amazon Polly's Mandarin
voice), then <Gather>s one digit; the keypress goes to
``/hooks/twilio/voice/<token>`` (signed by Twilio, checked there), whose token
names the one request the call is about.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from twilio.twiml.voice_response import Gather, VoiceResponse

from warnbot.channels.twilio_sms import errors, make_client
from warnbot.model import Message, Receipt
from warnbot.settings import TwilioSettings

VOICE = {"voice": "Polly.Zhiyu", "language": "cmn-CN"}
PROMPT = "确认收到请按1。"
GATHER_TIMEOUT_S = 8
# A call is created after its outbox row; this much disagreement between our clock and
# Twilio's is allowed when looking for it. Ladder calls to one person are minutes apart.
CLOCK_SKEW_S = 60.0


class TwilioVoice:
    """Places calls with ``client.calls.create_async`` and inline TwiML."""

    name = "voice"

    def __init__(self, settings: TwilioSettings, public_url: str) -> None:
        self.settings, self.public_url = settings, public_url.rstrip("/")
        self.http, self.client = make_client(settings)

    async def send(self, message: Message) -> Receipt:
        async with errors():
            call = await self.client.calls.create_async(
                to=message.to, from_=self.settings.from_number, twiml=self.twiml(message)
            )
        return Receipt(provider_id=call.sid, status=call.status or "queued")

    async def reconcile(self, message: Message, since: datetime) -> Receipt | None:
        """Did Twilio already place this call (before a crash, or an answer lost on the
        way)? Calls carry no key of ours, so Calls list is asked for our calls to this
        number, and the earliest created since the row was queued is it."""
        async with errors():
            recent = await self.client.calls.list_async(
                to=message.to, from_=self.settings.from_number, limit=50
            )
        floor = since - timedelta(seconds=CLOCK_SKEW_S)
        ours = [c for c in recent if c.date_created is None or c.date_created >= floor]
        if not ours:
            return None
        first = min(ours, key=lambda c: c.date_created or floor)
        return Receipt(provider_id=first.sid, status=first.status or "queued")

    def twiml(self, message: Message) -> str:
        """Read the text twice (a first hearing at night is often lost), then ask."""
        response = VoiceResponse()
        if message.ack_token is None:
            response.say(message.body, **VOICE)
            return str(response)
        gather = Gather(
            num_digits=1,
            timeout=GATHER_TIMEOUT_S,
            method="POST",
            action=f"{self.public_url}/hooks/twilio/voice/{message.ack_token}",
        )
        for _ in range(2):
            gather.say(f"{message.body} {PROMPT}", **VOICE)
        response.append(gather)
        response.say("未收到按键，稍后将再次来电。", **VOICE)
        return str(response)

    async def aclose(self) -> None:
        await self.http.close()


def answer(confirmed: bool | None, closed: bool = False) -> str:
    """TwiML to play after a keypress: thanks, a retry prompt, 'invalid', or that the
    response has ended (the incident was lifted while the call rang)."""
    response = VoiceResponse()
    if closed:
        response.say("本次响应已结束，无需确认。", **VOICE)
        response.hangup()
    elif confirmed:
        response.say("已确认收到，谢谢。", **VOICE)
        response.hangup()
    elif confirmed is None:
        response.say("链接无效。", **VOICE)
        response.hangup()
    else:
        response.say(f"未识别。{PROMPT}", **VOICE)
    return str(response)
