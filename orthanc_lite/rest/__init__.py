"""REST handlers grouped by resource, as Orthanc's OrthancRestApi/*.cpp; setup_routes wires them all."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from . import (archive, attachments, changes, find, images, jobs, metadata, modalities, modality_ops, modify,
               peer_ops, queries, resources, system, tags, upload_form)

MODULES: Final = (system, resources, changes, modalities, metadata, attachments, tags, find, jobs, images, modify, archive,
                  modality_ops, peer_ops, queries)

# POST routes that only read: kept in ReadOnly mode.
READ_ONLY_POSTS: Final = frozenset({"/tools/find", "/tools/count-resources", "/tools/lookup",
                                     "/tools/create-archive", "/tools/create-media", "/tools/create-media-extended"})


def setup_routes(app: web.Application, read_only: bool = False) -> None:
    """Register every module's routes; in ReadOnly mode the write routes are not registered at all, so they
    answer 404 or 405 as in Orthanc (>= 1.12.5)."""
    for module in MODULES:
        for route in module.routes:
            if read_only and not _reads_only(route):
                continue
            app.router.add_routes([route])
    upload_form.setup(app)  # the chunked uploads of POST /instances in progress


def _reads_only(route: web.AbstractRouteDef) -> bool:
    if not isinstance(route, web.RouteDef):
        return True
    return route.method in ("GET", "HEAD") or (route.method == "POST" and route.path in READ_ONLY_POSTS)
