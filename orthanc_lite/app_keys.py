"""Typed aiohttp application keys (no string keys, no singletons)."""

from __future__ import annotations

from aiohttp import web

from .services.context import ServerContext

CONTEXT: web.AppKey[ServerContext] = web.AppKey("context", ServerContext)
USERNAME: web.RequestKey[str] = web.RequestKey("username", str)
