"""``warnbot feeds parse`` and ``warnbot rules test``: feeds and rules from the shell."""

from __future__ import annotations

import asyncio
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import aiohttp

from warnbot.errors import ConfigError, FeedError
from warnbot.ingest import atom, poller, sniff, to_json
from warnbot.model import Observation
from warnbot.model import Warning as CapWarning
from warnbot.replay import lines, replay
from warnbot.settings import FeedSettings, Settings


def parse_command(source: str, fmt: str | None, mapping: Path | None, language: str) -> int:
    """Print one normalized JSON object per line; 1 with the reason on bad input."""
    try:
        items = asyncio.run(_items(source, fmt, _mapping(mapping), language))
    except FeedError as e:
        print(f"无法解析 cannot parse {source}: {e}", file=sys.stderr)
        return 1
    for item in items:
        print(json.dumps(_json(item), ensure_ascii=False))
    return 0


def rules_test_command(settings: Settings, files: list[str]) -> int:
    """Replay files through the configured rules; print each transition and why."""
    items: list[CapWarning | Observation] = []
    try:
        for source in files:
            found = asyncio.run(_items(source, None, None, settings.language))
            items += [w for w in map(_unwrap, found) if w is not None]
    except FeedError as e:
        print(f"无法解析 cannot parse: {e}", file=sys.stderr)
        return 1
    replayed = replay(settings.rules, items)
    print("\n".join(lines(replayed)) or "无变化 no incident transitions")
    return 0


async def _items(
    source: str, fmt: str | None, mapping: dict[str, Any] | None, language: str
) -> list[Any]:
    url = source if source.startswith(("http://", "https://", "file:")) else f"file:{source}"
    feed = FeedSettings.model_validate(
        {"name": "cli", "url": url, "format": fmt, "mapping": mapping}
    )
    async with aiohttp.ClientSession() as session:
        fetched = await poller.fetch(feed, session)
    assert fetched.data is not None
    return poller.read(feed, fmt or sniff(fetched.data), fetched.data, language)


def _mapping(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as e:
        raise ConfigError([f"{path}: cannot read the mapping: {e}"]) from None
    return dict(data)


def _unwrap(item: Any) -> CapWarning | Observation | None:
    """Index entries replay as the warning they carry inline, if any."""
    return item.warning() if isinstance(item, atom.Entry) else item


def _json(item: Any) -> dict[str, Any]:
    if isinstance(item, atom.Entry):
        inline = item.warning()
        return to_json(inline) if inline else {"kind": "entry", "id": item.id, "link": item.link}
    return to_json(item)
