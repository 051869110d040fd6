"""JSON API handlers. Every call needs ``Authorization: Bearer <token>`` (``warnbot user
token NAME``); the token acts with its account's role: reading needs a viewer,
acting a duty officer. Bodies are validated with pydantic; a bad one gets 400
with every problem and changes nothing. Each action is audited under the account's name.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warnbot.console import actions, auth
from warnbot.console.actions import ActionError, Manual
from warnbot.console.boardview import STATES, Group
from warnbot.console.incidents import board_of
from warnbot.console.keys import CONSOLE_STORE
from warnbot.model import Incident, Level
from warnbot.store.accounts import Account
from warnbot.web.keys import APP

_Model = TypeVar("_Model", bound=BaseModel)
Handler = Callable[[web.Request, Account], Awaitable[web.StreamResponse]]


def error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def bearer(
    role: str,
) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Run the handler for a valid token whose account has at least ``role``."""

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(handler)
        async def inner(request: web.Request) -> web.StreamResponse:
            app, store = request.app[APP], request.app[CONSOLE_STORE]
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return web.json_response(
                    {"error": "bearer token required"},
                    status=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
            account = await store.token_account(auth.digest(token.strip()), app.clock())
            if account is None:  # unknown, revoked, or its account disabled
                await store.audit("-", "api_refused_token", app.clock(), request.path, via="api")
                return error(401, "invalid token")
            if not auth.allows(account.role, role):
                await store.audit(
                    account.name, "api_refused_role", app.clock(), request.path, via="api"
                )
                return error(403, f"the {account.role} role may not do this")
            return await handler(request, account)

        return inner

    return wrap


class TriggerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # as the document's additionalProperties: false

    regions: list[str] = Field(min_length=1, max_length=200)
    level: str
    hazard: str = Field(min_length=1, max_length=50)
    template: str = "standard"
    text: str = Field(default="", max_length=500)
    drill: bool = False
    # Level Ⅰ and Ⅱ need this, the API's second confirmation.
    confirm_high_level: bool = False


class LiftBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: int
    note: str = Field(default="", max_length=200)


async def _body(request: web.Request, model: type[_Model]) -> _Model:
    try:
        return model.model_validate(await request.json())
    except ValueError as e:  # ValidationError is a ValueError, as is bad JSON
        problems = (
            [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
            if isinstance(e, ValidationError)
            else ["the body is not JSON"]
        )
        raise web.HTTPBadRequest(
            text=web.json_response({"error": "invalid body", "problems": problems}).text,
            content_type="application/json",
        ) from None


def incident_json(i: Incident, lifted_at: Any = None) -> dict[str, Any]:
    return {
        "id": i.id,
        "level": i.level.roman,
        "hazard": i.hazard,
        "region_code": i.region_code,
        "headline": i.headline,
        "status": i.status,
        "source": i.source,
        "drill": i.drill,
        "opened_at": i.opened_at.isoformat(),
        "lifted_at": lifted_at.isoformat() if lifted_at else None,
    }


def _id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None


@bearer("viewer")
async def list_incidents(request: web.Request, account: Account) -> web.StreamResponse:
    status = request.query.get("status", "open")
    if status not in ("open", "all"):
        return error(400, "status must be open or all")
    rows = await request.app[CONSOLE_STORE].incidents(limit=500)
    listed = [
        incident_json(i, lifted) for i, lifted in rows if status == "all" or i.status == "open"
    ]
    return web.json_response({"incidents": listed})


@bearer("duty_officer")
async def trigger(request: web.Request, account: Account) -> web.StreamResponse:
    body = await _body(request, TriggerBody)
    try:
        level = Level.parse(body.level)
    except ValueError as e:
        return error(400, str(e))
    if level in actions.HIGH_LEVELS and not body.confirm_high_level:
        return error(409, "Level Ⅰ and Ⅱ need confirm_high_level: true")
    m = Manual(tuple(body.regions), level, body.hazard, body.template, body.text, body.drill)
    try:
        opened = await actions.open_manual(
            request.app[APP], request.app[CONSOLE_STORE], m, account.name, via="api"
        )
    except ActionError as e:
        return error(400, str(e))
    return web.json_response({"incidents": [incident_json(i) for i in opened]}, status=201)


@bearer("duty_officer")
async def lift(request: web.Request, account: Account) -> web.StreamResponse:
    body = await _body(request, LiftBody)
    incident_id = _id(request)
    try:
        await actions.lift(
            request.app[APP],
            request.app[CONSOLE_STORE],
            incident_id,
            body.reason,
            account.name,
            via="api",
        )
    except ActionError as e:
        return error(404 if e.code == "no_incident" else 409, str(e))
    incident = await request.app[APP].store.incident(incident_id)
    assert incident is not None
    return web.json_response(
        incident_json(incident, await request.app[CONSOLE_STORE].lifted_at(incident_id))
    )


@bearer("viewer")
async def ack_board(request: web.Request, account: Account) -> web.StreamResponse:
    app = request.app[APP]
    incident = await app.store.incident(_id(request))
    if incident is None:
        return error(404, "no such incident")
    view = await board_of(app, request.app[CONSOLE_STORE], incident)
    return web.json_response(
        {
            "incident": incident_json(incident),
            "tiers": [{"tier": g.label, **_tally(g)} for g in view.tiers],
            "regions": [
                {"region_code": g.label, "name": g.name, **_tally(g)} for g in view.regions
            ],
            "people": [
                {
                    "request_id": r.request_id,
                    "responder_key": r.responder_key,
                    "name": r.name,
                    "tier": r.tier.value,
                    "region_code": r.region_code,
                    "state": r.state,
                    "channel": r.channel,
                    "time": r.time.isoformat(),
                    "deadline": r.deadline.isoformat(),
                    "escalated": r.escalated,
                }
                for r in view.rows
            ],
        }
    )


@bearer("duty_officer")
async def record_ack(request: web.Request, account: Account) -> web.StreamResponse:
    """A confirmation the duty officer took by telephone (path ``duty_officer``)."""
    body = await _body(request, AckBody)
    incident_id = _id(request)
    try:
        new = await actions.phone_ack(
            request.app[APP],
            request.app[CONSOLE_STORE],
            incident_id,
            body.request_id,
            body.note,
            account.name,
            via="api",
        )
    except ActionError as e:
        return error(404 if e.code in ("no_incident", "no_request") else 409, str(e))
    return web.json_response(
        {"request_id": body.request_id, "new": new}, status=201 if new else 200
    )


def _tally(g: Group) -> dict[str, int]:
    return {"total": g.total, **{s: g.counts.get(s, 0) for s in STATES}}
