"""Where the bundled ``templates/`` and ``config/`` live.

In a source checkout they sit beside the package; a built wheel carries them
inside it as ``warnbot/_data/`` (see pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def bundled(name: str) -> Path:
    """The directory ``name`` (``templates`` or ``config``) shipped with warnbot."""
    packaged = _PACKAGE / "_data" / name
    return packaged if packaged.is_dir() else _PACKAGE.parent / name
