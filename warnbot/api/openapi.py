"""The OpenAPI 3.1 description of the JSON API, served at ``/api/openapi.json``.

Written by hand beside the handlers it describes; a test validates it with
openapi-spec-validator and checks real responses against it with openapi-core.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

_ERROR = {"$ref": "#/components/schemas/Error"}
_INCIDENT_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
_STATE = {
    "type": "string",
    "enum": ["confirmed", "late", "pending", "silent", "unreachable", "no_longer_asked"],
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _errors(*codes: int) -> dict[str, Any]:
    texts = {
        400: "invalid request",
        401: "no or invalid bearer token",
        403: "role too low",
        404: "not found",
        409: "conflict: needs confirmation, already lifted, or nothing to confirm",
    }
    return {str(c): _json(_ERROR, texts[c]) for c in codes}


INCIDENT: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "level",
        "hazard",
        "region_code",
        "headline",
        "status",
        "drill",
        "opened_at",
    ],
    "properties": {
        "id": {"type": "integer"},
        "level": {"type": "string", "enum": ["Ⅰ", "Ⅱ", "Ⅲ", "Ⅳ"]},
        "hazard": {"type": "string"},
        "region_code": {"type": "string", "pattern": "^\\d{6}(\\d{3}){0,2}$"},
        "headline": {"type": "string"},
        "status": {"type": "string", "enum": ["open", "lifted"]},
        "source": {"type": "string"},
        "drill": {"type": "boolean"},
        "opened_at": {"type": "string", "format": "date-time"},
        "lifted_at": {"type": ["string", "null"], "format": "date-time"},
    },
}

PERSON: dict[str, Any] = {
    "type": "object",
    "required": ["request_id", "responder_key", "name", "tier", "state", "time", "deadline"],
    "properties": {
        "request_id": {"type": "integer"},
        "responder_key": {"type": "string"},
        "name": {"type": "string"},
        "tier": {"type": "string", "enum": ["city", "county", "township", "village"]},
        "region_code": {"type": "string"},
        "state": _STATE,
        "channel": {"type": "string"},
        "time": {"type": "string", "format": "date-time"},
        "deadline": {"type": "string", "format": "date-time"},
        "escalated": {"type": "boolean"},
    },
}

TIER: dict[str, Any] = {
    "type": "object",
    "required": ["tier", "total"],
    "properties": {
        "tier": {"type": "string"},
        "total": {"type": "integer"},
        **{s: {"type": "integer"} for s in _STATE["enum"]},
    },
}

REGION: dict[str, Any] = {
    "type": "object",
    "required": ["region_code", "name", "total", *_STATE["enum"]],
    "properties": {
        "region_code": {"type": "string"},
        "name": {"type": "string"},
        "total": {"type": "integer"},
        **{s: {"type": "integer"} for s in _STATE["enum"]},
    },
}

TRIGGER: dict[str, Any] = {
    "type": "object",
    "required": ["regions", "level", "hazard"],
    "additionalProperties": False,
    "properties": {
        "regions": {
            "type": "array",
            "minItems": 1,
            "maxItems": 200,
            "items": {"type": "string"},
        },
        "level": {"type": "string", "description": "Ⅰ…Ⅳ, I…IV or 1…4"},
        "hazard": {"type": "string", "minLength": 1, "maxLength": 50},
        "template": {"type": "string", "enum": ["standard", "transfer", "patrol"]},
        "text": {"type": "string", "maxLength": 500, "description": "free text headline"},
        "drill": {"type": "boolean"},
        "confirm_high_level": {
            "type": "boolean",
            "description": "required true for Level Ⅰ and Ⅱ: the second confirmation",
        },
    },
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "warnbot 预警叫应 API",
        "version": "1",
        "description": "Trigger and lift responses, read incidents and their ack boards, "
        "record confirmations taken by telephone. Tokens: `warnbot user token NAME`.",
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "components": {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "a console account's token: `warnbot user token NAME`",
            },
            "pushToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "the feed's own token, configured as its `push_token_sha256`",
            },
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {"type": "string"},
                    "problems": {"type": "array", "items": {"type": "string"}},
                },
            },
            "Incident": INCIDENT,
            "Person": PERSON,
            "TierTally": TIER,
            "RegionTally": REGION,
            "Trigger": TRIGGER,
        },
    },
    "paths": {
        "/api/incidents": {
            "get": {
                "operationId": "listIncidents",
                "summary": "Incidents, open ones by default",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["open", "all"], "default": "open"},
                    }
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["incidents"],
                            "properties": {
                                "incidents": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Incident"},
                                }
                            },
                        },
                        "the incidents",
                    ),
                    **_errors(400, 401),
                },
            },
            "post": {
                "operationId": "trigger",
                "summary": "Open a manual response (手动启动响应): one incident per chosen subtree "
                "(a region inside another chosen one is covered by it), nobody asked twice",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Trigger"}}
                    },
                },
                "responses": {
                    "201": _json(
                        {
                            "type": "object",
                            "required": ["incidents"],
                            "properties": {
                                "incidents": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Incident"},
                                }
                            },
                        },
                        "opened",
                    ),
                    **_errors(400, 401, 403, 409),
                },
            },
        },
        "/api/incidents/{id}/lift": {
            "post": {
                "operationId": "lift",
                "summary": "Lift (解除) an incident, with a reason",
                "parameters": [_INCIDENT_ID],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["reason"],
                                "additionalProperties": False,
                                "properties": {
                                    "reason": {"type": "string", "minLength": 1, "maxLength": 500}
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Incident"}, "lifted"),
                    **_errors(400, 401, 403, 404, 409),
                },
            }
        },
        "/api/incidents/{id}/board": {
            "get": {
                "operationId": "ackBoard",
                "summary": "The ack board (叫应看板): counts per tier and region, each person",
                "parameters": [_INCIDENT_ID],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["incident", "tiers", "regions", "people"],
                            "properties": {
                                "incident": {"$ref": "#/components/schemas/Incident"},
                                "tiers": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/TierTally"},
                                },
                                "regions": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/RegionTally"},
                                },
                                "people": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Person"},
                                },
                            },
                        },
                        "the board",
                    ),
                    **_errors(401, 404),
                },
            }
        },
        "/api/incidents/{id}/acks": {
            "post": {
                "operationId": "recordAck",
                "summary": "Record a confirmation taken by telephone (path duty_officer)",
                "parameters": [_INCIDENT_ID],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["request_id"],
                                "additionalProperties": False,
                                "properties": {
                                    "request_id": {"type": "integer"},
                                    "note": {"type": "string", "maxLength": 200},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json(
                        _RECORDED := {
                            "type": "object",
                            "required": ["request_id", "new"],
                            "properties": {
                                "request_id": {"type": "integer"},
                                "new": {"type": "boolean"},
                            },
                        },
                        "recorded",
                    ),
                    "200": _json(_RECORDED, "already confirmed before"),
                    **_errors(400, 401, 403, 404, 409),
                },
            }
        },
        "/api/incidents/{id}/cap.xml": {
            "get": {
                "operationId": "incidentCap",
                "summary": "The incident's latest CAP 1.2 document (GB/T 35965.1), public",
                "security": [],
                "parameters": [_INCIDENT_ID],
                "responses": {
                    "200": {
                        "description": "the CAP document last published for the incident",
                        "content": {"application/cap+xml": {"schema": {"type": "string"}}},
                    },
                    "404": _text("no such incident, or no CAP published for it"),
                },
            }
        },
        "/api/feeds/{name}": {
            "post": {
                "operationId": "pushFeed",
                "summary": "An upstream pushes CAP documents or readings to a `push:` feed",
                "security": [{"pushToken": []}],
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/cap+xml": {"schema": {"type": "string"}},
                        "application/xml": {"schema": {"type": "string"}},
                        "application/json": {"schema": {}},
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["accepted", "transitions"],
                            "properties": {
                                "accepted": {"type": "integer"},
                                "transitions": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                        "taken in: how many items, and the transitions they caused",
                    ),
                    "400": _json(_ERROR, "the payload does not parse (the feed turns unhealthy)"),
                    "401": _text("no bearer token"),
                    "403": _text("not this feed's token"),
                    "404": _text("no push feed of that name"),
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "the OpenAPI document"}},
            }
        },
    },
}


async def document(request: web.Request) -> web.Response:
    return web.json_response(SPEC)
