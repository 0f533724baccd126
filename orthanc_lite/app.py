"""build(settings) -> web.Application: the context, routes and middlewares; subsystems start in cleanup_ctx."""

from __future__ import annotations

from typing import AsyncIterator

from aiohttp import web

from .app_keys import CONTEXT, JOBS
from .config import Settings
from .dicomweb.client import client_routes
from .dicomweb.routes import setup_dicomweb
from .dimse.server import dicom_server_context
from .jobs.engine import JobEngine
from .rest import setup_routes
from .rest.middleware import OrthancRouter, add_security_headers, orthanc_middleware
from .services.context import ServerContext


def build(settings: Settings) -> web.Application:
    # Bodies are streamed by the handlers that accept big ones; read() elsewhere stays capped.
    # OrthancRouter resolves paths with a trailing slash (aiohttp deprecates passing a router, but it
    # is the one place that sees the path before the 404/405 decision).
    app = web.Application(
        router=OrthancRouter(),
        middlewares=[orthanc_middleware],
        client_max_size=64 * 1024 * 1024,
    )
    context = ServerContext(settings)
    app[CONTEXT] = context
    app[JOBS] = JobEngine(context)
    app.on_response_prepare.append(add_security_headers)
    app.cleanup_ctx.append(_context_lifecycle)
    app.cleanup_ctx.append(_jobs_lifecycle)  # after the context: stops (and saves the jobs) before it closes
    app.cleanup_ctx.append(dicom_server_context)  # after the context: stops first
    setup_routes(app, read_only=bool(settings.ReadOnly))
    setup_dicomweb(app, settings)
    dicomweb = settings.DicomWeb
    if dicomweb.get("Enable", True) and not settings.ReadOnly:
        app.router.add_routes(client_routes("/" + str(dicomweb.get("Root", "/dicom-web/")).strip("/") + "/"))
    return app


async def _context_lifecycle(app: web.Application) -> AsyncIterator[None]:
    ctx = app[CONTEXT]
    await ctx.open()
    yield
    await ctx.close()


async def _jobs_lifecycle(app: web.Application) -> AsyncIterator[None]:
    await app[JOBS].start()
    yield
    await app[JOBS].close()
