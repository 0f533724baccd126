"""/system, /statistics and the /tools routes every client calls on connection (~ OrthancRestSystem.cpp)."""

from __future__ import annotations

import datetime
import logging

import orjson
from aiohttp import web
from pydicom.uid import generate_uid

from .. import log
from ..version import __version__
from ..dicom import transfer_syntaxes
from ..dimse import conformance
from ..dicom.tags import signature
from ..dicom.values import ENCODINGS
from ..errors import ErrorCode, OrthancError
from ..index.schema import DATABASE_VERSION
from ..model import ResourceLevel
from ..services import resources as res
from ..services.context import ServerContext
from .helpers import ctx_of, json_response, text_response

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

ORTHANC_VERSION = "1.13.0"  # the Orthanc version emulated (FEATURES.md §5.7)
API_VERSION = 31
# What 1.13's built-in SQLite index announces; each capability is implemented (tests/rest/test_compat_113.py).
CAPABILITIES = {"HasExtendedChanges": True, "HasExtendedFind": True, "HasKeyValueStores": False,
                "HasQueues": False, "HasReserveQueueValue": False}


@routes.get("/system")
async def system(request: web.Request) -> web.Response:
    """Version, names, ports and capabilities of this server."""
    ctx = ctx_of(request)
    s = ctx.settings
    return json_response({
        "ApiVersion": API_VERSION,
        "Version": ORTHANC_VERSION,
        "OrthancLiteVersion": __version__,
        "DatabaseVersion": DATABASE_VERSION,
        "DatabaseBackendPlugin": None,
        "DatabaseServerIdentifier": s.DatabaseServerIdentifier or "Orthanc1",  # Orthanc's default
        "DicomAet": s.DicomAet,
        "DicomPort": ctx.dicom_port,
        "HttpPort": ctx.http_port,
        "IsHttpServerSecure": s.is_http_server_secure,
        "Name": s.Name,
        "PluginsEnabled": False,
        "StorageAreaPlugin": None,
        "CheckRevisions": bool(s.CheckRevisions),
        "StoreMD5ForAttachments": bool(s.StoreMD5ForAttachments),
        "StorageCompression": bool(s.StorageCompression),
        "MaximumStorageSize": int(s.MaximumStorageSize),
        "MaximumPatientCount": int(s.MaximumPatientCount),
        "MaximumStorageMode": s.MaximumStorageMode,
        "DicomDefaultRetrieveMethod": s.DicomDefaultRetrieveMethod,
        "IngestTranscoding": "",
        "OverwriteInstances": s.overwrite_mode != "Never",
        "OverwriteInstancesMode": s.overwrite_mode,  # 1.13: Never, Always or IfChanged
        "ReadOnly": bool(s.ReadOnly),
        "HasLabels": True,
        "UserMetadata": dict(s.user_metadata),
        "MainDicomTags": {level.type_name: signature(level) for level in ResourceLevel},
        "Capabilities": dict(CAPABILITIES),
    })


@routes.get("/statistics")
async def statistics(request: web.Request) -> web.Response:
    """Counts and sizes of the whole store."""
    return json_response(await res.statistics(ctx_of(request)))


@routes.get("/tools/now")
async def now_utc(request: web.Request) -> web.Response:
    """The current UTC time, ISO basic format."""
    return text_response(datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S"))


@routes.get("/tools/now-local")
async def now_local(request: web.Request) -> web.Response:
    """The current local time, ISO basic format."""
    return text_response(datetime.datetime.now().strftime("%Y%m%dT%H%M%S"))


@routes.get("/tools/generate-uid")
async def generate(request: web.Request) -> web.Response:
    """A new DICOM UID for the given level."""
    level = request.query.get("level", "")
    try:
        ResourceLevel.parse(level)
    except ValueError:
        raise OrthancError(ErrorCode.ParameterOutOfRange, "Level must be patient, study, series or instance") from None
    return text_response(generate_uid(prefix=None))


@routes.get("/tools/dicom-conformance")
async def dicom_conformance(request: web.Request) -> web.Response:
    """The DICOM conformance statement of the DICOM server, as plain text."""
    return web.Response(body=conformance.statement().encode(), headers={"Content-Type": "text/plain"})


@routes.post("/tools/invalidate-tags")
async def invalidate_tags(request: web.Request) -> web.Response:
    """Invalidate the cached JSON summaries of the DICOM files: tags are always read from the files here, so
    there is nothing to drop; answers an empty body, as Orthanc >= 1.9.1 does."""
    return web.Response(body=b"", headers={"Content-Type": "text/plain"})


@routes.get("/tools/default-encoding")
async def get_default_encoding(request: web.Request) -> web.Response:
    """The encoding assumed when SpecificCharacterSet is absent."""
    return text_response(ctx_of(request).default_encoding)


@routes.put("/tools/default-encoding")
async def put_default_encoding(request: web.Request) -> web.Response:
    """Change the default encoding at runtime."""
    ctx = ctx_of(request)
    value = (await request.text()).strip()
    match = next((name for name in ENCODINGS if name.lower() == value.lower()), None)
    if match is None:
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Unknown encoding: {value}")
    ctx.default_encoding = match
    logger.warning("Default encoding changed to %s", match)
    return text_response(match)  # Orthanc answers the name of the new encoding


@routes.get("/tools/accepted-transfer-syntaxes")
async def get_accepted_ts(request: web.Request) -> web.Response:
    """Transfer syntaxes accepted by the C-STORE SCP, as UIDs (the wildcards expanded, as Orthanc lists them)."""
    return json_response(_accepted_ts(ctx_of(request)))


@routes.put("/tools/accepted-transfer-syntaxes")
async def put_accepted_ts(request: web.Request) -> web.Response:
    """Replace the accepted transfer syntaxes: a JSON list of UIDs or patterns, or one (JSON or plain text).
    Answers the new list, expanded; a pattern that matches nothing is no error (Orthanc answers [] too)."""
    ctx = ctx_of(request)
    raw = await request.read()
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = raw.decode("utf-8", "replace").strip()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OrthancError(ErrorCode.BadFileFormat, "Expected a list of transfer syntax UIDs")
    ctx.accepted_transfer_syntaxes = value
    return json_response(_accepted_ts(ctx))


def _accepted_ts(ctx: ServerContext) -> list[str]:
    return transfer_syntaxes.listed(transfer_syntaxes.in_effect(ctx.accepted_transfer_syntaxes, ctx.settings))


@routes.get("/tools/unknown-sop-class-accepted")
async def get_unknown_sop(request: web.Request) -> web.Response:
    """Whether the C-STORE SCP accepts unknown SOP classes (0/1)."""
    return text_response("1" if ctx_of(request).unknown_sop_class_accepted else "0")


@routes.put("/tools/unknown-sop-class-accepted")
async def put_unknown_sop(request: web.Request) -> web.Response:
    """Accept (1) or refuse (0) unknown SOP classes."""
    ctx = ctx_of(request)
    value = (await request.text()).strip().lower()
    if value not in ("0", "1", "true", "false"):
        raise OrthancError(ErrorCode.ParameterOutOfRange, "Expected 0, 1, true or false")
    ctx.unknown_sop_class_accepted = value in ("1", "true")
    return text_response("")


_LOG_CATEGORIES = ("", "-dicom", "-generic", "-http", "-jobs", "-lua", "-plugins", "-sqlite")


def _log_level_routes() -> None:
    for suffix in _LOG_CATEGORIES:
        path = f"/tools/log-level{suffix}"

        async def get_level(request: web.Request) -> web.Response:
            """The log level: default, verbose or trace."""
            return text_response(log.current_level())

        async def put_level(request: web.Request) -> web.Response:
            """Change the log level: default, verbose or trace."""
            value = (await request.text()).strip()
            if value not in log.LEVELS:
                raise OrthancError(ErrorCode.ParameterOutOfRange, f"Unknown log level: {value}")
            log.set_level(value)
            return text_response(value)

        routes.get(path)(get_level)
        routes.put(path)(put_level)


_log_level_routes()


@routes.get("/plugins")
async def plugins(request: web.Request) -> web.Response:
    """The loaded plugins: the built-in DICOMweb server, when enabled."""
    return json_response(["dicom-web"] if ctx_of(request).settings.DicomWeb.get("Enable", True) else [])


@routes.get("/tools")
async def tools(request: web.Request) -> web.Response:
    """The children of /tools."""
    names = sorted({r.resource.canonical.split("/")[2] for r in request.app.router.routes()
                    if r.resource is not None and r.resource.canonical.startswith("/tools/")})
    return json_response(names)


@routes.get("/")
async def root(request: web.Request) -> web.StreamResponse:
    """Redirect to the web interface."""
    raise web.HTTPFound("app/explorer.html")
