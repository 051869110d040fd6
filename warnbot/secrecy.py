"""Every secret value a configuration holds, so logs and error pages can blank them:
``SecretStr`` settings, secret-named keys of channel settings (a chat bot's webhook
URL is its credential), the password in the database URL, the downstream tokens
read from the environment, and the link key."""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url

from warnbot.settings import Settings

_SECRET_NAME = re.compile(r"token|secret|password|key|webhook", re.IGNORECASE)


def secret_values(settings: Settings, *extra: str) -> list[str]:
    """The secrets in ``settings`` and ``extra``, longest first (so a secret that
    contains another is blanked whole)."""
    found = [v for v in extra if v]
    _walk(settings, found)
    password = make_url(settings.database_url).password
    if password:
        found.append(str(password))
    found += [os.environ.get(d.token_env, "") for d in settings.downstream if d.token_env]
    return sorted(set(found), key=len, reverse=True)


def _walk(value: Any, found: list[str]) -> None:
    if isinstance(value, SecretStr):
        found.append(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _walk(getattr(value, name), found)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and _SECRET_NAME.search(str(key)):
                found.append(item)
            else:
                _walk(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _walk(item, found)
