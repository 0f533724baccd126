"""Typed aiohttp application keys (no string keys, no singletons)."""

from __future__ import annotations

from aiohttp import web

from .jobs.engine import JobEngine
from .services.context import ServerContext

CONTEXT: web.AppKey[ServerContext] = web.AppKey("context", ServerContext)
JOBS: web.AppKey[JobEngine] = web.AppKey("jobs", JobEngine)  # jobs/ sits above services/: not in the context
USERNAME: web.RequestKey[str] = web.RequestKey("username", str)
