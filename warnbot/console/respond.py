"""Console actions: the manual response (form → preview → confirm, a second confirmation
for Level Ⅰ and Ⅱ), lift and upgrade with a reason, remind the silent, record a
phone confirmation. Each POST is guarded (duty officer, CSRF) and audited."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from warnbot.console import actions, messages
from warnbot.console import preview as previews
from warnbot.console.actions import ActionError, Manual
from warnbot.console.keys import CONSOLE_STORE, PAGES
from warnbot.console.session import Visitor, guard
from warnbot.model import Level
from warnbot.regions import Region
from warnbot.web.keys import APP


def region_tree(request: web.Request) -> list[tuple[int, Region]]:
    """The regions as (depth, region), parents before children, for nested checkboxes."""
    tree = request.app[APP].regions
    if tree is None:
        return []
    out: list[tuple[int, Region]] = []

    def walk(region: Region, depth: int) -> None:
        out.append((depth, region))
        for child in tree.children(region.code):
            walk(child, depth + 1)

    for root in tree.roots():
        walk(root, 0)
    return out


def _form_page(
    request: web.Request, v: Visitor, error: str = "", status: int = 200
) -> web.Response:
    return request.app[PAGES].response(
        v.language,
        "respond.html",
        status=status,
        me=v,
        regions=region_tree(request),
        levels=list(Level),
        hazards=messages.HAZARDS,
        templates=messages.HEADLINE_LABELS,
        error=error,
        chosen=_manual_or_none(v),
    )


@guard("duty_officer")
async def form(request: web.Request, v: Visitor) -> web.StreamResponse:
    return _form_page(request, v)


def manual_from(v: Visitor) -> Manual:
    if v.form is None:
        raise ActionError("empty_form")
    try:
        level = Level.parse(v.field("level"))
    except ValueError:
        raise ActionError("level") from None
    return Manual(
        region_codes=tuple(c for c in v.form.getall("region", []) if isinstance(c, str)),
        level=level,
        hazard=v.field("hazard").strip(),
        template=v.field("template", "standard"),
        text=v.field("text"),
        drill=v.field("drill") == "on",
    )


def _manual_or_none(v: Visitor) -> Manual | None:
    try:
        return manual_from(v) if v.form is not None else None
    except ActionError:
        return None


@guard("duty_officer")
async def preview(request: web.Request, v: Visitor) -> web.StreamResponse:
    app = request.app[APP]
    try:
        m = manual_from(v)
        shown = await previews.build(app, request.app[CONSOLE_STORE], m, v.name)
    except ActionError as e:
        return _form_page(request, v, e.text(v.language), 400)
    return request.app[PAGES].response(
        v.language, "preview.html", me=v, m=m, p=shown, high=m.level in actions.HIGH_LEVELS
    )


@guard("duty_officer")
async def confirm(request: web.Request, v: Visitor) -> web.StreamResponse:
    """Open the response; Level Ⅰ/Ⅱ first show a second confirmation page."""
    app = request.app[APP]
    try:
        m = manual_from(v)
        if m.level in actions.HIGH_LEVELS and v.field("second") != "yes":
            shown = await previews.build(app, request.app[CONSOLE_STORE], m, v.name)
            return request.app[PAGES].response(v.language, "confirm_high.html", me=v, m=m, p=shown)
        opened = await actions.open_manual(app, request.app[CONSOLE_STORE], m, v.name)
    except ActionError as e:
        return _form_page(request, v, e.text(v.language), 400)
    raise web.HTTPSeeOther(f"/incidents/{opened[0].id}" if len(opened) == 1 else "/")


def _back(
    incident_id: int, *, error: str = "", notice: str = "", only: str = ""
) -> web.HTTPSeeOther:
    """Back to the incident page with an error code or a notice (never free text)."""
    query = f"?error={quote(error)}" if error else f"?notice={quote(notice)}" if notice else ""
    if only:
        query += ("&" if query else "?") + f"only={quote(only)}"
    return web.HTTPSeeOther(f"/incidents/{incident_id}{query}")


def _id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None


@guard("duty_officer")
async def lift(request: web.Request, v: Visitor) -> web.StreamResponse:
    incident_id = _id(request)
    try:
        await actions.lift(
            request.app[APP], request.app[CONSOLE_STORE], incident_id, v.field("reason"), v.name
        )
    except ActionError as e:
        raise _back(incident_id, error=e.code) from None
    raise _back(incident_id, notice="lifted")


@guard("duty_officer")
async def upgrade(request: web.Request, v: Visitor) -> web.StreamResponse:
    """Upgrade by hand; to Level Ⅰ or Ⅱ only after a second confirmation, as a manual
    response of those levels."""
    app = request.app[APP]
    incident_id = _id(request)
    try:
        level = Level.parse(v.field("level"))
        if level in actions.HIGH_LEVELS and v.field("second") != "yes":
            incident, reason = await actions.check_upgrade(
                app, incident_id, level, v.field("reason")
            )
            return request.app[PAGES].response(
                v.language,
                "confirm_upgrade.html",
                me=v,
                incident=incident,
                level=level,
                reason=reason,
                asked=actions.asked_at(app, incident, level),
            )
        await actions.upgrade(
            app, request.app[CONSOLE_STORE], incident_id, level, v.field("reason"), v.name
        )
    except ActionError as e:
        raise _back(incident_id, error=e.code) from None
    except ValueError:  # an unknown level
        raise _back(incident_id, error="level") from None
    raise _back(incident_id, notice="upgraded")


@guard("duty_officer")
async def remind(request: web.Request, v: Visitor) -> web.StreamResponse:
    incident_id = _id(request)
    try:
        n = await actions.remind_silent(
            request.app[APP], request.app[CONSOLE_STORE], incident_id, v.name
        )
    except ActionError as e:
        raise _back(incident_id, error=e.code) from None
    raise _back(incident_id, notice=f"reminded:{n}", only=v.field("only"))


@guard("duty_officer")
async def phone_ack(request: web.Request, v: Visitor) -> web.StreamResponse:
    incident_id = _id(request)
    try:
        try:
            request_id = int(v.field("request_id"))
        except ValueError:
            raise ActionError("no_request") from None
        await actions.phone_ack(
            request.app[APP],
            request.app[CONSOLE_STORE],
            incident_id,
            request_id,
            v.field("note"),
            v.name,
        )
    except ActionError as e:
        raise _back(incident_id, error=e.code) from None
    raise _back(incident_id, notice="phone_ack", only=v.field("only"))
