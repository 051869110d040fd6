"""Shared fixtures: a real store on SQLite and PostgreSQL, a fixed clock, factories.

PostgreSQL is the server at 127.0.0.1:5432 (trust auth, database ``test``); each
test run works in a scratch database of its own, dropped at the end. Locally
the PostgreSQL half is skipped when no server answers; under CI (``CI`` set)
that is a failure, because a green run must have covered both engines.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from warnbot.app import App, build
from warnbot.fakes.twilio import FakeTwilio
from warnbot.settings import Settings, load_settings
from warnbot.store import Store
from warnbot.store.tables import metadata

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
DEMO = ROOT / "config" / "demo"
PG_DSN = os.environ.get("WARNBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 8, 15, 6, 15, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def _pg_admin(query: str) -> None:
    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        await conn.execute(query)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A scratch PostgreSQL database for this run, as an SQLAlchemy URL."""
    name = f"warnbot_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as e:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI and is not reachable at {PG_DSN}: {e}")
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN}: {e}")
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using a store runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/warnbot.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """A migrated, empty store."""
    s = Store.connect(db_url)
    await s.migrate()
    if s.engine.dialect.name == "postgresql":
        async with s.engine.begin() as conn:
            names = ", ".join(t.name for t in metadata.sorted_tables)
            await conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    yield s
    await s.close()


@pytest.fixture
def demo_settings(tmp_path: Path) -> Callable[..., Settings]:
    """The demo configuration with overrides, database in ``tmp_path``."""

    def make(**overrides: object) -> Settings:
        overrides.setdefault("database_url", f"sqlite+aiosqlite:///{tmp_path}/demo.db")
        return load_settings(DEMO / "warnbot.toml", **overrides)

    return make


ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "test-auth-token-not-a-secret"
PUBLIC_URL = "https://warnbot.example.org"


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    """A local fake Twilio, checked against Twilio's OpenAPI description."""
    async with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as fake:
        yield fake


def twilio_settings(settings: Settings, base_url: str, token: str | None = AUTH_TOKEN) -> Settings:
    """``settings`` sending through the fake at ``base_url``."""
    twilio = settings.twilio.model_copy(
        update={
            "api_base_url": base_url,
            "account_sid": ACCOUNT_SID,
            "auth_token": SecretStr(token) if token else None,
        }
    )
    web = settings.web.model_copy(update={"public_url": PUBLIC_URL})
    return settings.model_copy(update={"twilio": twilio, "web": web, "sms_channel": "twilio"})


@pytest.fixture
async def app(store: Store, fake_twilio: FakeTwilio, clock: Clock) -> AsyncIterator[App]:
    """The demo configuration, started, on both engines, sending to the fake Twilio."""
    settings = twilio_settings(load_settings(DEMO / "warnbot.toml"), fake_twilio.base_url)
    started = build(settings, store=store)
    started.clock = clock
    await started.start()
    yield started
    await started.stop()


def sign(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
    """Headers Twilio would send with ``form`` posted to ``url``."""
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, form)}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI a skipped test is a failure: the run must cover PostgreSQL too."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped:
        print(f"\nCI: {skipped} test(s) skipped; every test must run in CI", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
