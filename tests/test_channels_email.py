"""Email: what arrives at a real SMTP server on 127.0.0.1, and how its replies are classified.

The server is aiosmtpd's, in the test's own event loop; its handler keeps every
message and answers the next RCPT with a reply the test chose (451, 550).
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from warnbot.channels import CHANNELS
from warnbot.channels.email import EmailSettings, SmtpEmail, subject
from warnbot.errors import ConfigError, SendError
from warnbot.model import Message
from warnbot.settings import load_settings

USER, PASSWORD = "warnbot", "test-password-not-a-secret"
TO = "lin.xiaoqing@example.org"
BODY = (
    "【暴雨橙色预警】示例县气象台发布暴雨橙色预警信号，启动Ⅱ级应急响应。\n"
    "请回复1确认收到，或打开链接：https://warnbot.example.org/a/1.abcdefghijkl\n"
)


class Mailbox:
    """An aiosmtpd handler that keeps what arrives and can refuse the next recipients."""

    def __init__(self) -> None:
        self.received: list[Envelope] = []
        self.replies: deque[str] = deque()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.replies:
            return self.replies.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 2.0.0 Ok: queued"

    def mail(self, i: int = -1) -> EmailMessage:
        content = self.received[i].content
        assert isinstance(content, bytes)
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # not handled: the server answers 535


@pytest.fixture
async def mailbox() -> AsyncIterator[tuple[Mailbox, int]]:
    """A plain SMTP server on 127.0.0.1 (AUTH offered without TLS, for the test only)."""
    box = Mailbox()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(box, hostname="smtp.test", authenticator=authenticate, auth_require_tls=False),
        "127.0.0.1",
        0,
    )
    yield box, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def settings(port: int, **kw: Any) -> EmailSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "starttls": False,
        "from_address": "warn@sanfang.example.org",
        "from_name": "示例县三防办",
        "timeout_s": 5,
    }
    return EmailSettings.model_validate({**values, **kw})


def message(to: str = TO, key: str = "request:7:email") -> Message:
    return Message(key, "email", to, BODY, incident_id=1, responder_key="C01")


async def test_a_chinese_body_arrives_intact_with_its_first_line_as_subject(
    mailbox: tuple[Mailbox, int],
) -> None:
    box, port = mailbox
    await SmtpEmail(settings(port)).send(message())
    mail = box.mail()
    assert mail.get_content() == BODY
    assert mail["Subject"] == "【暴雨橙色预警】示例县气象台发布暴雨橙色预警信号，启动Ⅱ级应急响应。"
    assert mail["From"].addresses[0].display_name == "示例县三防办"
    assert mail["To"] == TO and box.received[0].rcpt_tos == [TO]
    assert mail["Auto-Submitted"] == "auto-generated"


def test_the_subject_is_the_first_line_cut_to_60_characters() -> None:
    assert subject("\n  " + "雨" * 80 + "\n第二行") == "雨" * 60
    assert subject("") == "warnbot"


async def test_a_retry_carries_the_same_message_id_and_another_message_another(
    mailbox: tuple[Mailbox, int],
) -> None:
    box, port = mailbox
    channel = SmtpEmail(settings(port))
    receipts = [await channel.send(message(key=k)) for k in ("request:7:email",) * 2 + ("x",)]
    ids = [box.mail(i)["Message-ID"] for i in range(3)]
    assert ids[0] == ids[1] != ids[2] and ids[0].endswith("@sanfang.example.org>")
    assert [r.provider_id for r in receipts] == ids


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [
        ("451 4.3.0 Temporary local problem, try again later", True),
        ("452 4.2.2 Mailbox full", True),
        ("550 5.1.1 No such user here", False),
    ],
)
async def test_4xx_replies_are_transient_and_5xx_permanent(
    mailbox: tuple[Mailbox, int], reply: str, retryable: bool
) -> None:
    box, port = mailbox
    box.replies.append(reply)
    with pytest.raises(SendError) as e:
        await SmtpEmail(settings(port)).send(message())
    assert e.value.retryable is retryable and e.value.code == reply[:3]
    assert reply[4:] in e.value.reason and not box.received


async def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SendError) as e:
        await SmtpEmail(settings(port)).send(message())
    assert e.value.retryable


@pytest.mark.parametrize("to", ["+8617000000101", "a@b.org\r\nBcc: x@y.org", "", "a@b"])
async def test_an_address_that_is_not_one_is_permanent_and_never_sent(
    mailbox: tuple[Mailbox, int], to: str
) -> None:
    box, port = mailbox
    with pytest.raises(SendError) as e:
        await SmtpEmail(settings(port)).send(message(to=to))
    assert not e.value.retryable and not box.received


async def test_a_server_without_starttls_gets_nothing_in_the_clear(
    mailbox: tuple[Mailbox, int],
) -> None:
    box, port = mailbox
    with pytest.raises(SendError) as e:
        await SmtpEmail(settings(port, starttls=None, username=USER, password=PASSWORD)).send(
            message()
        )
    assert not e.value.retryable and not box.received


def _toml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "warnbot.toml"
    path.write_text(body, encoding="utf-8")
    return path


def _config(port: int) -> str:
    return (
        f'[channels.email]\nhost = "127.0.0.1"\nport = {port}\nstarttls = false\n'
        f'username = "{USER}"\nfrom_address = "warn@sanfang.example.org"\n'
    )


async def test_the_registry_logs_in_with_the_password_from_the_environment(
    mailbox: tuple[Mailbox, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port = mailbox
    monkeypatch.setenv("WARNBOT_CHANNELS__EMAIL__PASSWORD", PASSWORD)
    channel = CHANNELS["email"](load_settings(_toml(tmp_path, _config(port))))
    await channel.send(message())
    assert len(box.received) == 1


async def test_a_wrong_password_is_permanent(
    mailbox: tuple[Mailbox, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port = mailbox
    monkeypatch.setenv("WARNBOT_CHANNELS__EMAIL__PASSWORD", "wrong")
    channel = CHANNELS["email"](load_settings(_toml(tmp_path, _config(port))))
    with pytest.raises(SendError) as e:
        await channel.send(message())
    assert not e.value.retryable and e.value.code == "535" and not box.received


def test_a_password_written_in_the_toml_file_is_refused(tmp_path: Path) -> None:
    path = _toml(tmp_path, _config(25) + 'password = "hunter2"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(path)
    assert "channels.email.password: secrets are not read" in str(e.value)


def test_starttls_and_implicit_tls_together_are_a_config_error(tmp_path: Path) -> None:
    path = _toml(
        tmp_path, _config(465).replace("starttls = false", "starttls = true\nuse_tls = true")
    )
    with pytest.raises(ConfigError, match=r"channels\.email.*exclude each other"):
        CHANNELS["email"](load_settings(path))
