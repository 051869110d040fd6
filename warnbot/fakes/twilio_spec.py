"""Check requests to the fake Twilio against Twilio's own OpenAPI description.

The fake is only worth having if it refuses what the real API refuses, so every
request is validated with openapi-core against ``specs/twilio_api_v2010.json``
(vendored byte-for-byte, see ``specs/README.md``). Loading is lazy and happens
once per process. The validator is built from the paths the fake serves plus
all components: building it from the whole 1.8 MB description costs ~1 s of
openapi-spec-validator time, the served subset ~0.2 s.

Three gaps in the description are closed here rather than in the vendored file:

* ``requestBody.required`` is unset on create operations, so openapi-core lets
  an empty POST through; the served subset marks those bodies required.
* openapi-core rejects parameters in formats it does not know (Twilio's
  ``phone-number`` on the list filter ``To``); those formats pass as is.
* ``x-twilio.conditional`` (e.g. a Message needs ``From`` or
  ``MessagingServiceSid``) is an extension openapi-core ignores; it is
  enforced after schema validation.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.unmarshalling.schemas import oas30_format_unmarshallers
from werkzeug.datastructures import Headers, ImmutableMultiDict

log = logging.getLogger(__name__)

SPEC_FILE = Path(__file__).parent / "specs" / "twilio_api_v2010.json"
#: The spec's only server; requests are presented as if they had gone there.
TWILIO_HOST_URL = "https://api.twilio.com"

MESSAGES = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
MESSAGE = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"
CALLS = "/2010-04-01/Accounts/{AccountSid}/Calls.json"
CALL = "/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json"
SERVED_PATHS = (MESSAGES, MESSAGE, CALLS, CALL)
_PATTERNS = {
    t: re.compile(re.sub(r"\{\w+\}", "[^/]+", t.replace(".", r"\."))) for t in SERVED_PATHS
}

#: Twilio's error codes for a missing field (or conditional group, keyed by its
#: first member), so SDK users see the code the real API would send.
FIELD_CODES: dict[str, dict[str, int]] = {
    MESSAGES: {"To": 21604, "From": 21603, "Body": 21602},
    CALLS: {"To": 21201, "From": 21213, "Url": 21205},
}
BAD_REQUEST_CODE = 70002  # Twilio's "Bad request": wrong type, format or schema
NOT_FOUND_CODE = 20404


@dataclass(frozen=True)
class Problem:
    """Why a request is invalid, as a Twilio error code and a readable message."""

    code: int
    message: str


@dataclass
class SpecRequest:
    """openapi-core's ``Request`` protocol for a request that reached the fake.

    ``host_url`` is pinned to the spec's server so path matching works whatever
    host and port the fake listens on.
    """

    method: str
    path: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters = field(default_factory=RequestParameters)
    host_url: str = TWILIO_HOST_URL


@dataclass(frozen=True)
class SpecResponse:
    """openapi-core's ``Response`` protocol, used to check the fake's own answers."""

    status_code: int
    data: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedSpec:
    """The raw description (for ``x-twilio`` extensions) and its validator."""

    raw: dict[str, Any]
    openapi: OpenAPI
    timings: dict[str, float]


async def from_aiohttp(request: web.Request) -> SpecRequest:
    """The request as openapi-core sees it; multidicts keep repeated keys (``MediaUrl``)."""
    query = ImmutableMultiDict(list(request.query.items()))
    parameters = RequestParameters(query=query, header=Headers(request.headers.items()))
    content_type = request.content_type if request.body_exists else ""
    body = await request.read()
    return SpecRequest(request.method.lower(), request.path, body or None, content_type, parameters)


@functools.cache
def load() -> LoadedSpec:
    """Load and build the validator once per process, logging how long it took."""
    started = time.perf_counter()
    with SPEC_FILE.open(encoding="utf-8") as handle:
        raw = json.load(handle)
    parsed = time.perf_counter()
    subset = served_subset(raw)
    openapi = OpenAPI.from_dict(subset, config=_config(subset))
    built = time.perf_counter()
    timings = {"json_load_s": parsed - started, "build_s": built - parsed}
    log.info("Twilio OpenAPI description loaded: %s", timings)
    return LoadedSpec(raw, openapi, timings)


def served_subset(raw: dict[str, Any]) -> dict[str, Any]:
    """The served paths with create bodies marked required, plus every component."""
    paths = {path: copy.deepcopy(raw["paths"][path]) for path in SERVED_PATHS}
    for item in paths.values():
        if "requestBody" in item.get("post", {}):
            item["post"]["requestBody"]["required"] = True
    return {**raw, "paths": paths}


def _config(document: dict[str, Any]) -> Config:
    """Responses must carry every documented field, so the fake's shapes stay complete."""
    return Config(
        extra_format_unmarshallers=_as_is(document),
        response_properties_default_policy="required",
    )


def _as_is(document: dict[str, Any]) -> dict[str, Callable[[Any], Any]]:
    """Identity unmarshallers for Twilio's own formats (``phone-number``, ``twiml``…).

    openapi-core raises FormatterNotFoundError for an unknown format on a
    parameter (python-openapi/openapi-core#515), which would reject the SDK's
    own ``To`` filter; Twilio's formats are documentation, so take them as is.
    """
    found = set(re.findall(r'"format": "([^"]+)"', json.dumps(document)))
    return {name: _identity for name in found - set(oas30_format_unmarshallers)}


def _identity(value: Any) -> Any:
    """Leave a value in a Twilio-specific format unchanged."""
    return value


def check(request: SpecRequest) -> Problem | None:
    """The first reason the request is invalid, or None when Twilio would accept it."""
    result = load().openapi.unmarshal_request(request)
    template = template_of(request.path)
    errors = list(result.errors)
    if errors:
        return _problem(errors[0], template)
    return _conditional_problem(template, request.method, result.body or {})


def response_problems(method: str, path: str, response: SpecResponse) -> list[str]:
    """Schema violations in one of the fake's answers (the tests' guard on its shapes)."""
    request = SpecRequest(method.lower(), path, None, "")
    result = load().openapi.unmarshal_response(request, response)
    return [_message(error) for error in result.errors]


def null_resource(schema: str) -> dict[str, None]:
    """Every property of a component schema, null, for answers to fill in."""
    return dict.fromkeys(load().raw["components"]["schemas"][schema]["properties"])


def template_of(path: str) -> str | None:
    """The served path template matching ``path``, if any."""
    return next((t for t, pattern in _PATTERNS.items() if pattern.fullmatch(path)), None)


def _problem(error: BaseException, template: str | None) -> Problem:
    """Map an openapi-core error to the code Twilio uses for the same mistake."""
    name = type(error).__name__
    if name in {"PathNotFound", "OperationNotFound"}:
        return Problem(NOT_FOUND_CODE, str(error))
    missing = _missing_field(error)
    if missing is not None:
        message = f"Missing required parameter {missing}"
        return Problem(_field_code(template, missing), message)
    return Problem(BAD_REQUEST_CODE, _message(error))


def _message(error: BaseException) -> str:
    """``str(error)`` with the schema violations spelled out instead of repr'd."""
    details = [detail.message for detail in _schema_errors(error)]
    if not details:
        return str(error)
    head = str(error).split(": Value ", 1)[0]
    return f"{head}: {'; '.join(details)}"


def _schema_errors(error: BaseException) -> list[Any]:
    """jsonschema errors behind an openapi-core error (they hang off its cause)."""
    return list(getattr(error.__cause__, "schema_errors", ()))


def _missing_field(error: BaseException) -> str | None:
    """The first required form field that is absent, when that is the problem."""
    if type(error).__name__ == "MissingRequiredRequestBody":
        return "To"
    for detail in _schema_errors(error):
        if detail.validator == "required" and isinstance(detail.instance, dict):
            return str(next(n for n in detail.validator_value if n not in detail.instance))
    return None


def _field_code(template: str | None, name: str) -> int:
    """Twilio's code for ``name`` missing on this resource, else the generic one."""
    return FIELD_CODES.get(template or "", {}).get(name, BAD_REQUEST_CODE)


def _conditional_problem(
    template: str | None, method: str, body: Mapping[str, Any]
) -> Problem | None:
    """Enforce ``x-twilio.conditional``: each group needs at least one non-empty member."""
    for group in conditionals(template, method):
        names = [form_field(member) for member in group]
        if not any(body.get(name) for name in names):
            message = f"One of {', '.join(names)} is required"
            return Problem(_field_code(template, names[0]), message)
    return None


def conditionals(template: str | None, method: str) -> list[list[str]]:
    """The operation's conditional groups, in snake_case as the spec writes them."""
    if template is None:
        return []
    operation = load().raw["paths"][template].get(method, {})
    groups: list[list[str]] = operation.get("x-twilio", {}).get("conditional", [])
    return groups


def form_field(snake: str) -> str:
    """``messaging_service_sid`` -> ``MessagingServiceSid``, the form field's name."""
    return "".join(part.capitalize() for part in snake.split("_"))
