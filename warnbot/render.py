"""Render: message text from jinja2 templates, per channel kind and language.

Templates live in ``templates/<kind>/<language>/<name>.j2``. The environment is
sandboxed (operators edit templates; a template must not reach Python
internals) and undefined names are errors, so a typo never sends "None" to
a thousand people. A language without its own template falls back to Chinese.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from warnbot.resources import bundled

DEFAULT_LANGUAGE = "zh"


class Renderer:
    """Loads templates once; ``render`` is then pure."""

    def __init__(self, templates_dir: Path | None = None) -> None:
        self.env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(templates_dir or bundled("templates")),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(["html", "html.j2"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(
        self, kind: str, name: str, language: str, *, channel: str = "", **context: Any
    ) -> str:
        """The text of template ``name`` for channel ``kind`` in ``language``.

        A provider with rules of its own (Aliyun refuses links in SMS variables) has
        its templates in ``<kind>-<channel>/``; any it lacks come from ``<kind>/``.
        """
        kinds = [f"{kind}-{channel}", kind] if channel else [kind]
        names: list[str | jinja2.Template] = [
            f"{k}/{lang}/{name}.j2" for k in kinds for lang in (language, DEFAULT_LANGUAGE)
        ]
        return self.env.get_or_select_template(names).render(**context).strip()
