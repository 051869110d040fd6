"""Typed application keys, in one place."""

from aiohttp import web

from warnbot.app import App

APP = web.AppKey("warnbot", App)
