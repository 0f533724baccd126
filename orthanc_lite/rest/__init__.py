"""REST handlers grouped by resource, as Orthanc's OrthancRestApi/*.cpp; setup_routes wires them all."""

from __future__ import annotations

from aiohttp import web

from . import attachments, changes, metadata, modalities, resources, system


def setup_routes(app: web.Application) -> None:
    for module in (system, resources, changes, modalities, metadata, attachments):
        app.router.add_routes(module.routes)
