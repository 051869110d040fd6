"""Fixtures of the console tests: ``client`` (the web application on a test server) and
``officer`` (a signed-in duty officer's CSRF token). A test module takes them with
``pytest_plugins = ("tests.console_fixtures",)``; its own fixture of the same name wins."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.console_helpers import make_account, sign_in
from warnbot.app import App
from warnbot.web import make_app


@pytest.fixture
async def client(app: App, aiohttp_client: Any) -> TestClient:
    return await aiohttp_client(make_app(app))


@pytest.fixture
async def officer(app: App, client: TestClient) -> str:
    """A signed-in duty officer; the session's CSRF token."""
    await make_account(app, "值班员张三", "duty_officer")
    return await sign_in(client, "值班员张三")
