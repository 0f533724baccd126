"""The DICOMweb server's routes under DicomWeb.Root and WadoRoot (the plugin's Plugin.cpp registrations), its
/plugins entry, the optional CORS headers, and the background refresh of the metadata cache."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Final

from aiohttp import web

from ..app_keys import CONTEXT
from ..config import Settings
from ..errors import ErrorCode, OrthancError
from ..model import ResourceLevel
from ..rest.helpers import json_response
from ..services import dicomweb as service
from . import images, qido, stow, wado
from .common import dicomweb_root, wado_root

PLUGIN_NAME: Final = "dicom-web"
PLUGIN_VERSION: Final = "1.24"
STUDY: Final = "studies/{study}"
SERIES: Final = STUDY + "/series/{series}"
INSTANCE: Final = SERIES + "/instances/{instance}"


async def search_studies(request: web.Request) -> web.StreamResponse:
    """QIDO-RS: search for studies."""
    return await qido.search(request, ResourceLevel.STUDY)


async def search_series(request: web.Request) -> web.StreamResponse:
    """QIDO-RS: search for series (of a study when the path names it)."""
    return await qido.search(request, ResourceLevel.SERIES)


async def search_instances(request: web.Request) -> web.StreamResponse:
    """QIDO-RS: search for instances (of a study or series when the path names them)."""
    return await qido.search(request, ResourceLevel.INSTANCE)


async def retrieve_study(request: web.Request) -> web.StreamResponse:
    """WADO-RS: the instances of a study, multipart/related application/dicom."""
    return await wado.retrieve(request, ResourceLevel.STUDY)


async def retrieve_series(request: web.Request) -> web.StreamResponse:
    """WADO-RS: the instances of a series, multipart/related application/dicom."""
    return await wado.retrieve(request, ResourceLevel.SERIES)


async def retrieve_instance(request: web.Request) -> web.StreamResponse:
    """WADO-RS: one instance, multipart/related application/dicom."""
    return await wado.retrieve(request, ResourceLevel.INSTANCE)


async def study_metadata(request: web.Request) -> web.StreamResponse:
    """WADO-RS: the metadata of every instance of a study (DICOM JSON)."""
    return await wado.study_metadata(request)


async def series_metadata(request: web.Request) -> web.StreamResponse:
    """WADO-RS: the metadata of every instance of a series (DICOM JSON, cached)."""
    return await wado.series_metadata(request)


async def instance_metadata(request: web.Request) -> web.StreamResponse:
    """WADO-RS: the metadata of one instance (DICOM JSON)."""
    return await wado.instance_metadata(request)


async def bulk_data(request: web.Request) -> web.StreamResponse:
    """WADO-RS: the bulk data a BulkDataURI points at."""
    return await wado.bulk(request)


async def all_frames(request: web.Request) -> web.StreamResponse:
    """WADO-RS: every frame of an instance."""
    return await images.frames(request)


async def selected_frames(request: web.Request) -> web.StreamResponse:
    """WADO-RS: some frames of an instance (1-based, comma-separated)."""
    return await images.frames(request)


async def study_rendered(request: web.Request) -> web.StreamResponse:
    """WADO-RS: a study rendered (its first instance), JPEG or PNG."""
    return await images.rendered(request, ResourceLevel.STUDY)


async def series_rendered(request: web.Request) -> web.StreamResponse:
    """WADO-RS: a series rendered (its first instance), JPEG or PNG."""
    return await images.rendered(request, ResourceLevel.SERIES)


async def instance_rendered(request: web.Request) -> web.StreamResponse:
    """WADO-RS: an instance rendered (its first frame), JPEG or PNG."""
    return await images.rendered(request, ResourceLevel.INSTANCE)


async def frame_rendered(request: web.Request) -> web.StreamResponse:
    """WADO-RS: one frame rendered, JPEG or PNG."""
    return await images.rendered(request, ResourceLevel.INSTANCE)


async def study_thumbnail(request: web.Request) -> web.StreamResponse:
    """WADO-RS: a study thumbnail."""
    return await images.rendered(request, ResourceLevel.STUDY, thumbnail=True)


async def series_thumbnail(request: web.Request) -> web.StreamResponse:
    """WADO-RS: a series thumbnail."""
    return await images.rendered(request, ResourceLevel.SERIES, thumbnail=True)


async def instance_thumbnail(request: web.Request) -> web.StreamResponse:
    """WADO-RS: an instance thumbnail."""
    return await images.rendered(request, ResourceLevel.INSTANCE, thumbnail=True)


async def frame_thumbnail(request: web.Request) -> web.StreamResponse:
    """WADO-RS: a frame thumbnail."""
    return await images.rendered(request, ResourceLevel.INSTANCE, thumbnail=True)


async def stow_studies(request: web.Request) -> web.StreamResponse:
    """STOW-RS: store instances."""
    return await stow.store(request)


async def stow_study(request: web.Request) -> web.StreamResponse:
    """STOW-RS: store instances of one study (409 for another study)."""
    return await stow.store(request)


async def wado_uri(request: web.Request) -> web.StreamResponse:
    """WADO-URI: one instance as DICOM, JPEG or PNG."""
    return await images.wado_uri(request)


async def plugin_info(request: web.Request) -> web.Response:
    """The DICOMweb plugin's description."""
    root = dicomweb_root(request.app[CONTEXT].settings.DicomWeb)
    return json_response({
        "Description": "Implementation of DICOMweb (QIDO-RS, STOW-RS and WADO-RS) and WADO-URI.",
        "ExtendsOrthancExplorer": True,
        "ID": PLUGIN_NAME,
        "RootUri": f"..{root}app/client/index.html",
        "Version": PLUGIN_VERSION,
    })


async def update_cache(request: web.Request) -> web.Response:
    """Recompute the WADO-RS metadata cache of every series of a study."""
    ctx = request.app[CONTEXT]
    if not service.cache_enabled(ctx):
        raise OrthancError(ErrorCode.BadRequest, "The metadata cache is disabled in the Orthanc configuration.")
    info = await ctx.index.expand_one(request.match_info["id"], ResourceLevel.STUDY)
    if info is not None:
        for series_id in info.children:
            await service.refresh_series_cache(ctx, series_id)
    return web.Response(body=b"{}", content_type="application/json")


def enabled(settings: Settings) -> bool:
    return bool(settings.DicomWeb.get("Enable", True))


def setup_dicomweb(app: web.Application, settings: Settings) -> None:
    """Register the DICOMweb and WADO-URI routes as the DicomWeb section says, CORS, and the cache refresher."""
    section = settings.DicomWeb
    read_only = bool(settings.ReadOnly)
    router = app.router
    if enabled(settings):
        root = dicomweb_root(section)
        gets: list[tuple[str, Any]] = [
            ("studies", search_studies), ("series", search_series), ("instances", search_instances),
            (STUDY, retrieve_study), (STUDY + "/series", search_series), (STUDY + "/instances", search_instances),
            (STUDY + "/metadata", study_metadata), (SERIES, retrieve_series), (SERIES + "/instances", search_instances),
            (SERIES + "/metadata", series_metadata), (INSTANCE, retrieve_instance),
            (INSTANCE + "/metadata", instance_metadata), (INSTANCE + "/bulk/{path:.*}", bulk_data),
            (INSTANCE + "/frames", all_frames), (INSTANCE + "/frames/{frames}", selected_frames),
            (STUDY + "/rendered", study_rendered), (SERIES + "/rendered", series_rendered),
            (INSTANCE + "/rendered", instance_rendered), (INSTANCE + "/frames/{frame}/rendered", frame_rendered),
            (STUDY + "/thumbnail", study_thumbnail), (SERIES + "/thumbnail", series_thumbnail),
            (INSTANCE + "/thumbnail", instance_thumbnail), (INSTANCE + "/frames/{frame}/thumbnail", frame_thumbnail),
        ]
        for path, handler in gets:
            router.add_get(root + path, handler, allow_head=False)
        if not read_only:
            router.add_post(root + "studies", stow_studies)
            router.add_post(root + STUDY, stow_study)
            router.add_post("/studies/{id}/update-dicomweb-cache", update_cache)
        router.add_get("/plugins/" + PLUGIN_NAME, plugin_info, allow_head=False)
        app.cleanup_ctx.append(_cache_refresher)
    if section.get("EnableWado", True):
        router.add_get(wado_root(section), wado_uri, allow_head=False)
    configured: object = section.get("CorsAllowedOrigins", []) or []
    origins = [str(o) for o in configured] if isinstance(configured, (list, tuple)) else []
    if origins:
        prefixes = tuple(p for p in (dicomweb_root(section), wado_root(section)) if p)
        app.middlewares.insert(0, _cors_middleware(origins, prefixes))
        app.on_response_prepare.append(_cors_headers(origins, prefixes))


async def _cache_refresher(app: web.Application) -> AsyncIterator[None]:
    """StableSeries -> precompute the series metadata (runs after the context is open, stops before it closes)."""
    ctx = app[CONTEXT]
    task = asyncio.create_task(service.follow_stable_series(ctx)) if service.cache_enabled(ctx) else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _allowed_origin(request: web.Request, origins: list[str]) -> str | None:
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    if "*" in origins:
        return "*"
    return origin if origin in origins else None


def _cors_middleware(origins: list[str], prefixes: tuple[str, ...]) -> Any:
    @web.middleware
    async def cors(request: web.Request, handler: Any) -> web.StreamResponse:
        """Answer CORS preflights of the DICOMweb routes before authentication (browsers send no credentials)."""
        if request.method == "OPTIONS" and request.path.startswith(prefixes) \
                and "Access-Control-Request-Method" in request.headers:
            allowed = _allowed_origin(request, origins)
            if allowed is None:
                return web.Response(status=403)
            return web.Response(status=204, headers={
                "Access-Control-Allow-Origin": allowed,
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", "*"),
                "Access-Control-Max-Age": "86400",
                "Vary": "Origin",
            })
        return await handler(request)
    return cors


def _cors_headers(origins: list[str], prefixes: tuple[str, ...]) -> Any:
    async def add(request: web.Request, response: web.StreamResponse) -> None:
        if not request.path.startswith(prefixes):
            return
        allowed = _allowed_origin(request, origins)
        if allowed is not None:
            response.headers["Access-Control-Allow-Origin"] = allowed
            response.headers["Access-Control-Expose-Headers"] = "Content-Type, Content-Length"
            response.headers["Vary"] = "Origin"
    return add
