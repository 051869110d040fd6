"""The JSON API: bearer tokens hashed at rest, roles, validated bodies, audited actions;
every answer checked against the OpenAPI document it serves, and /metrics."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_spec_validator import validate

from tests.conftest import PUBLIC_URL, sign
from tests.console_helpers import make_account
from warnbot.api.openapi import SPEC
from warnbot.app import App
from warnbot.console import auth
from warnbot.settings import CapSettings
from warnbot.store.accounts import ConsoleStore
from warnbot.web import make_app

pytest_plugins = ("tests.console_fixtures",)

TRIGGER = {"regions": ["449901"], "level": "Ⅲ", "hazard": "暴雨"}


@dataclass(frozen=True)
class SpecRequest:
    method: str
    path: str
    body: bytes | None
    content_type: str = "application/json"
    parameters: RequestParameters = field(default_factory=RequestParameters)
    host_url: str = "http://127.0.0.1"

    @property
    def full_url_pattern(self) -> str:
        return self.host_url + self.path


@dataclass(frozen=True)
class SpecResponse:
    status_code: int
    data: bytes | str
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


class Api:
    """A client that sends a bearer token and checks each answer against the document."""

    def __init__(self, client: TestClient, token: str | None) -> None:
        self.client, self.token = client, token
        self.spec = OpenAPI.from_dict(SPEC)

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        resp = await self.client.request(method, path, json=body, headers=headers)
        data = await resp.read()
        template = _template(path)
        request = SpecRequest(method.lower(), template, json.dumps(body).encode() if body else None)
        result = self.spec.unmarshal_response(request, SpecResponse(resp.status, data))
        assert not list(result.errors), (resp.status, data, list(result.errors))
        return resp.status, json.loads(data)


def _template(path: str) -> str:
    """The concrete path, as openapi-core matches concrete paths to templates itself."""
    return path.split("?")[0]


async def _token(app: App, name: str, role: str) -> str:
    await make_account(app, name, role)
    store = ConsoleStore(app.store.engine)
    account = await store.account(name)
    assert account is not None
    return await auth.issue_api_token(store, account, "test", app.clock())


@pytest.fixture
async def officer(app: App, client: TestClient) -> Api:
    return Api(client, await _token(app, "接口值班员", "duty_officer"))


def test_the_openapi_document_is_valid() -> None:
    validate(SPEC)


async def test_the_document_is_served_without_a_token(client: TestClient) -> None:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200 and (await resp.json())["openapi"] == "3.1.0"


async def test_tokens_are_kept_only_as_digests(app: App, officer: Api) -> None:
    async with app.store.engine.connect() as conn:
        rows = (await conn.exec_driver_sql("SELECT token_sha256 FROM api_tokens")).all()
    assert rows == [(auth.digest(officer.token or ""),)]


async def test_without_or_with_a_wrong_token_the_api_answers_401(client: TestClient) -> None:
    assert (await Api(client, None).call("GET", "/api/incidents"))[0] == 401
    assert (await Api(client, "forged").call("GET", "/api/incidents"))[0] == 401


async def test_trigger_list_board_ack_and_lift_through_the_api(app: App, officer: Api) -> None:
    status, opened = await officer.call("POST", "/api/incidents", TRIGGER)
    assert status == 201
    incident_id = opened["incidents"][0]["id"]
    assert opened["incidents"][0]["level"] == "Ⅲ"
    status, listed = await officer.call("GET", "/api/incidents")
    assert [i["id"] for i in listed["incidents"]] == [incident_id]
    status, board = await officer.call("GET", f"/api/incidents/{incident_id}/board")
    assert len(board["people"]) == 10 and {p["state"] for p in board["people"]} == {"pending"}
    county = next(r for r in board["regions"] if r["region_code"] == "449901")
    assert (county["name"], county["total"], county["pending"]) == ("示例县", 2, 2)
    assert sum(r["total"] for r in board["regions"]) == 10
    v01 = next(p for p in board["people"] if p["responder_key"] == "V01")
    status, recorded = await officer.call(
        "POST", f"/api/incidents/{incident_id}/acks", {"request_id": v01["request_id"]}
    )
    assert status == 201 and recorded["new"]
    board = (await officer.call("GET", f"/api/incidents/{incident_id}/board"))[1]
    village = next(r for r in board["regions"] if r["region_code"] == "449901001001")
    assert (village["name"], village["confirmed"], village["pending"]) == ("一镇南村", 1, 0)
    again = await officer.call(
        "POST", f"/api/incidents/{incident_id}/acks", {"request_id": v01["request_id"]}
    )
    assert again == (200, {"request_id": v01["request_id"], "new": False})
    status, lifted = await officer.call(
        "POST", f"/api/incidents/{incident_id}/lift", {"reason": "雨停"}
    )
    assert status == 200 and lifted["status"] == "lifted" and lifted["lifted_at"]
    assert (await officer.call("POST", f"/api/incidents/{incident_id}/lift", {"reason": "x"}))[
        0
    ] == 409
    other = next(p for p in board["people"] if p["responder_key"] == "V02")
    late = {"request_id": other["request_id"]}
    status, body = await officer.call("POST", f"/api/incidents/{incident_id}/acks", late)
    assert status == 409 and "already lifted" in body["error"]
    actions = [e.action for e in await ConsoleStore(app.store.engine).audit_log()]
    assert {"manual_open", "phone_ack", "lift"} <= set(actions)


async def test_level_ii_through_the_api_needs_the_second_confirmation(
    app: App, officer: Api
) -> None:
    status, body = await officer.call("POST", "/api/incidents", {**TRIGGER, "level": "II"})
    assert status == 409 and "confirm_high_level" in body["error"]
    assert await app.store.open_incidents() == []
    confirmed = {**TRIGGER, "level": "II", "confirm_high_level": True}
    assert (await officer.call("POST", "/api/incidents", confirmed))[0] == 201


async def test_a_bad_body_gets_400_with_every_problem_and_opens_nothing(
    app: App, officer: Api
) -> None:
    status, body = await officer.call("POST", "/api/incidents", {"regions": [], "hazard": ""})
    assert status == 400 and len(body["problems"]) == 3
    status, body = await officer.call("POST", "/api/incidents", {**TRIGGER, "regions": ["12"]})
    assert status == 400 and "未知区域" in body["error"]
    assert await app.store.open_incidents() == []


async def test_a_viewer_token_reads_but_may_not_trigger(
    app: App, client: TestClient, officer: Api
) -> None:
    viewer = Api(client, await _token(app, "只读", "viewer"))
    assert (await viewer.call("GET", "/api/incidents"))[0] == 200
    status, body = await viewer.call("POST", "/api/incidents", TRIGGER)
    assert status == 403 and "viewer" in body["error"]
    assert await app.store.open_incidents() == []


async def test_metrics_count_messages_acks_time_to_confirm_feeds_and_outbox(
    app: App, client: TestClient, officer: Api
) -> None:
    assert (await officer.call("POST", "/api/incidents", TRIGGER))[0] == 201
    await app.pump()
    form = {"From": app.people["V01"].phones[0], "Body": "1"}
    url = f"{PUBLIC_URL}/hooks/twilio/sms"
    await client.post("/hooks/twilio/sms", data=form, headers=sign(url, form))
    await app.store.feed_failed("示例县气象台 demo CAP", "timeout", app.clock())
    text = await (await client.get("/metrics")).text()
    # ten asks and the duty officer's 值班提示 that the response opened
    assert 'warnbot_messages_total{channel="twilio",outcome="sent"} 11.0' in text
    assert 'warnbot_acks_total{path="sms"} 1.0' in text
    assert 'warnbot_time_to_confirm_seconds_count{tier="village"} 1.0' in text
    assert 'warnbot_feed_up{feed="示例县气象台 demo CAP"} 0.0' in text
    assert 'warnbot_outbox_depth{status="queued"} 0.0' in text
    assert "warnbot_incidents_open 1.0" in text
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    assert all(n.startswith("warnbot_") for n in names if n)


def _check(method: str, path: str, status: int, data: bytes, content_type: str) -> None:
    """An answer that is not JSON (text or XML, read as text), checked against the document."""
    spec = OpenAPI.from_dict(SPEC)
    response = SpecResponse(status, data.decode(), content_type=content_type)
    result = spec.unmarshal_response(SpecRequest(method, path, None), response)
    assert not list(result.errors), (status, data, list(result.errors))


async def test_the_document_describes_every_api_route_the_server_has(app: App) -> None:
    served = {
        (route.resource.canonical, route.method.lower())
        for route in make_app(app).router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/")
        and route.method != "HEAD"
    }
    documented = {(path, method) for path, ops in SPEC["paths"].items() for method in ops}
    assert served == documented


async def test_request_bodies_refuse_unknown_fields_as_the_document_says(
    app: App, officer: Api
) -> None:
    for ops in SPEC["paths"].values():
        for op in ops.values():
            schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            found = schema.get("schema", {})
            if "$ref" in found:
                found = SPEC["components"]["schemas"][found["$ref"].rsplit("/", 1)[1]]
            if found.get("type") == "object":
                assert found.get("additionalProperties") is False, op["operationId"]
    status, body = await officer.call("POST", "/api/incidents", {**TRIGGER, "urgent": True})
    assert status == 400 and body["problems"] == ["urgent: Extra inputs are not permitted"]
    assert await app.store.open_incidents() == []


async def test_the_cap_document_and_the_push_feed_answer_as_documented(
    app: App, client: TestClient, officer: Api
) -> None:
    missing = await client.get("/api/incidents/999/cap.xml")
    _check("get", "/api/incidents/999/cap.xml", 404, await missing.read(), "text/plain")
    cap = CapSettings(sender="warnbot.example.org", issuer_region="449901", issuer_org="416")
    app.settings = app.settings.model_copy(update={"cap": cap})
    incident_id = (await officer.call("POST", "/api/incidents", TRIGGER))[1]["incidents"][0]["id"]
    doc = await client.get(f"/api/incidents/{incident_id}/cap.xml")
    assert doc.status == 200 and doc.content_type == "application/cap+xml"
    _check("get", f"/api/incidents/{incident_id}/cap.xml", 200, await doc.read(), doc.content_type)
    push = await client.post("/api/feeds/nowhere", data=b"<alert/>")
    _check("post", "/api/feeds/nowhere", 404, await push.read(), "text/plain")
