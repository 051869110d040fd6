"""Typed application keys of the console and the JSON API."""

from __future__ import annotations

from aiohttp import web

from warnbot.console.boards import Boards
from warnbot.console.live import Hub
from warnbot.console.rostercheck import RosterCheck
from warnbot.console.views import Pages
from warnbot.store.accounts import ConsoleStore

CONSOLE_STORE = web.AppKey("console_store", ConsoleStore)
PAGES = web.AppKey("console_pages", Pages)
HUB = web.AppKey("console_hub", Hub)
ROSTER_CHECK = web.AppKey("console_roster_check", RosterCheck)
BOARDS = web.AppKey("console_boards", Boards)
