"""REST handlers grouped by resource, as Orthanc's OrthancRestApi/*.cpp; setup_routes wires them all."""

from __future__ import annotations

from aiohttp import web

from . import attachments, changes, find, metadata, modalities, resources, system, tags


def setup_routes(app: web.Application) -> None:
    for module in (system, resources, changes, modalities, metadata, attachments, tags, find):
        app.router.add_routes(module.routes)
