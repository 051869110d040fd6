"""Text the console's Python code shows, as message ids for the gettext catalogs.

Msgids are English (``locale/<lang>/LC_MESSAGES/console.po`` translates them);
``N_`` marks a string for ``pybabel extract`` without translating it here, since
the visitor's language is only known when the page is drawn. Errors have codes:
a redirect carries the code (``?error=reason``), never text, and a page shows
only what this fixed table says for a code it knows.
"""

from __future__ import annotations

from warnbot.console import i18n


def N_(msgid: str) -> str:
    """Mark ``msgid`` for extraction; translated where it is shown."""
    return msgid


ERRORS: dict[str, str] = {
    "empty_form": N_("The form is empty."),
    "level": N_("Choose a level."),
    "choose_region": N_("Choose at least one region."),
    "unknown_region": N_("Unknown region %(region)s."),
    "hazard": N_("Give the hazard (at most 50 characters)."),
    "text_too_long": N_("The text must be at most 500 characters."),
    "unknown_template": N_("Unknown template %(name)s."),
    "already_open": N_("Already open: %(keys)s. Upgrade it instead."),
    "no_incident": N_("No such incident."),
    "lifted": N_("The incident is already lifted."),
    "reason": N_("Give a reason."),
    "higher_only": N_("Only a level higher than the current one."),
    "no_request": N_("No such request in this incident."),
    "nothing_recorded": N_("Nothing recorded: this person has no request open to confirm."),
}

# Hazards offered in the manual response (the value is what messages say, in Chinese).
HAZARDS: dict[str, str] = {
    "暴雨": N_("rainstorm"),
    "台风": N_("typhoon"),
    "洪水": N_("flood"),
    "山洪": N_("flash flood"),
    "地质灾害": N_("geological hazard"),
    "高温": N_("heat"),
    "大风": N_("gale"),
    "寒潮": N_("cold wave"),
    "森林火险": N_("forest fire danger"),
}

# What each headline template says, for the form (the headline itself is sent in Chinese).
HEADLINE_LABELS: dict[str, str] = {
    "standard": N_("Standard: start the response"),
    "transfer": N_("Transfer: start the response and move people out of danger now"),
    "patrol": N_("Patrol: start the response and step up patrols and watch"),
}


def text(language: str, code: str, /, **params: str) -> str:
    """Error ``code`` in ``language`` with its parameters; "" for an unknown code."""
    msgid = ERRORS.get(code)
    if msgid is None:
        return ""
    translated = i18n.translations(language).gettext(msgid)
    return translated % params if params else translated


def both(code: str, /, **params: str) -> str:
    """Chinese first, then English: for the JSON API and logs."""
    return f"{text('zh', code, **params)} {text('en', code, **params)}"


def redirectable(code: str) -> bool:
    """True for a known code whose text needs no parameters (a redirect carries none)."""
    return code in ERRORS and "%(" not in ERRORS[code]
