"""ZIP archives and DICOMDIR media: /{patients,studies,series}/{id}/{archive,media} and
/tools/create-{archive,media,media-extended} (~ OrthancRestArchive.cpp)."""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

from aiohttp import web

from ..dicom import transcode
from ..errors import ErrorCode, OrthancError
from ..app_keys import JOBS
from ..jobs.archive import ArchiveJob, MediaJob, SynchronousArchiveJob, SynchronousMediaJob
from ..jobs.engine import JobRecord
from ..services import archive as archive_service
from ..services.context import ServerContext
from ..storage.base import unlink_quietly
from .helpers import bool_arg, ctx_of, json_body
from .jobs_submit import is_synchronous, job_priority, submit_job, user_data

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

LEVELS = "{level:patients|studies|series}"
ID = "{id:[0-9a-f-]+}"
STREAMS_KEY = "archive_streams"  # ctx.extra: the archives being streamed now (observability, tests)


# --- parameters -----------------------------------------------------------------------------------
def _transfer_syntax(value: str) -> str:
    from ..dicom.transfer_syntaxes import KNOWN_SYNTAXES

    if value not in KNOWN_SYNTAXES:
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Unknown transfer syntax: {value}")
    return value


def _lossy_quality(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        quality = int(value)
    except (TypeError, ValueError):
        raise OrthancError(ErrorCode.ParameterOutOfRange, "LossyQuality must be an integer between 1 and 100") from None
    if not 1 <= quality <= 100:
        raise OrthancError(ErrorCode.ParameterOutOfRange, "LossyQuality must be an integer between 1 and 100")
    return quality


def _content_filename(name: str) -> str:
    """The Content-Disposition filename: printable, without quotes or separators (no header injection; as
    Orthanc >= 1.12.11, `"toto".dcm` gives `toto.dcm`)."""
    cleaned = "".join(c for c in name if c.isprintable() and c not in '"\\/\r\n')
    return cleaned or "archive.zip"


def _resources_from_body(body: Any) -> list[str]:
    """Orthanc's AddResourcesOfInterest: a JSON list of IDs, or an object with "Resources"."""
    if isinstance(body, dict):
        if "Resources" not in body:
            raise OrthancError(ErrorCode.BadFileFormat, "Missing field Resources in the JSON body")
        body = body["Resources"]
    if not isinstance(body, list) or not all(isinstance(r, str) for r in body):
        raise OrthancError(ErrorCode.BadFileFormat, "Expected a list of strings (Orthanc identifiers)")
    return list(body)


def _bool_field(body: dict[str, Any], key: str) -> bool:
    value = body[key]
    if not isinstance(value, bool):
        raise OrthancError(ErrorCode.BadFileFormat, f"The field \"{key}\" must be a Boolean")
    return value


def _job_fields(body: Any) -> tuple[bool, Any]:
    """"Synchronous" (the default) / "Asynchronous"; "Priority" is checked here, used by the job engine."""
    job_priority(body)
    return is_synchronous(body, True), body


# --- answering ------------------------------------------------------------------------------------
async def _answer(request: web.Request, plan: archive_service.ArchivePlan, filename: str,
                  synchronous: bool = True, body: Any = None) -> web.StreamResponse:
    ctx = ctx_of(request)
    if not synchronous:
        return await _submit_async(request, plan, body)
    producer = archive_service.ArchiveProducer(ctx, plan, transcoder=_transcoder(ctx))
    headers = _zip_headers(filename)
    # As Orthanc (>= 1.9.4), a synchronous archive is a job too: Running in /jobs while it is sent.
    engine = request.app[JOBS]
    job_class = SynchronousMediaJob if plan.media else SynchronousArchiveJob
    record = engine.track(job_class(plan, producer), job_priority(body), *user_data(body))
    outcome = _Outcome()
    try:
        if not ctx.settings.SynchronousZipStream:
            try:
                response = await _send_from_file(request, producer, headers)
            except OrthancError as exc:
                outcome.error = exc
                raise
            outcome.error = None
            return response
        return await _stream(request, producer, headers, record, outcome)
    finally:
        await engine.settle(record, outcome.error)


class _Outcome:
    """How a synchronous archive ended: error None once the whole ZIP is sent."""

    def __init__(self) -> None:
        self.error: OrthancError | None = OrthancError(ErrorCode.NetworkProtocol,
                                                       "HTTP client has disconnected while creating an archive "
                                                       "in synchronous mode")


async def _stream(request: web.Request, producer: archive_service.ArchiveProducer, headers: dict[str, str],
                  record: JobRecord, outcome: _Outcome) -> web.StreamResponse:
    ctx = producer.ctx
    response = web.StreamResponse(headers=headers)
    response.enable_chunked_encoding()
    await response.prepare(request)
    streams: set[archive_service.ArchiveProducer] = ctx.extra.setdefault(STREAMS_KEY, set())
    streams.add(producer)
    try:
        while (chunk := await producer.next_chunk()) is not None:
            if record.stop_request is not None:  # DELETE-like cancel of the job: cut the stream
                raise OrthancError(ErrorCode.CanceledJob)
            if chunk:
                await response.write(chunk)
    except ConnectionResetError:
        logger.info("HTTP client has disconnected while creating an archive in synchronous mode")
        return response
    except Exception as exc:
        # The status line is sent: the only way left to say "failed" is to cut the stream short.
        if isinstance(exc, OrthancError):
            outcome.error = exc
            logger.error("Error while streaming an archive: %s", exc)
        else:
            outcome.error = OrthancError(ErrorCode.InternalError, str(exc))
            logger.exception("Error while streaming an archive")
        if request.transport is not None:
            request.transport.close()
        return response
    finally:
        producer.close()
        streams.discard(producer)
    await response.write_eof()
    outcome.error = None
    return response


def _zip_headers(filename: str) -> dict[str, str]:
    return {"Content-Type": "application/zip", "Content-Disposition": f'filename="{_content_filename(filename)}"'}


async def _send_from_file(request: web.Request, producer: archive_service.ArchiveProducer,
                          headers: dict[str, str]) -> web.StreamResponse:
    """SynchronousZipStream false (Orthanc <= 1.9.3): build a temporary file, then send it with its length."""
    ctx = producer.ctx
    fd, path = await ctx.executors.run_io(tempfile.mkstemp, ".zip", "archive", archive_service.archives_dir(ctx))
    await ctx.executors.run_io(os.close, fd)
    try:
        await archive_service.write_archive_file(producer, path)
        response = web.FileResponse(path, headers=headers)
        await response.prepare(request)
        return response
    finally:
        await ctx.executors.run_io(unlink_quietly, path)


def _transcoder(ctx: ServerContext) -> archive_service.Transcoder:
    """dicom/transcode.py's transcode_file, with DicomLossyTranscodingQuality when no quality is given."""
    default_quality = int(getattr(ctx.settings, "DicomLossyTranscodingQuality", 90) or 90)

    def run(data: bytes, target: str, quality: int | None) -> bytes | None:
        return bytes(transcode.transcode_file(data, target, quality or default_quality))

    return run


async def _submit_async(request: web.Request, plan: archive_service.ArchivePlan, body: Any) -> web.StreamResponse:
    """An "Archive" or "Media" job; its ZIP is then GET /jobs/{id}/archive."""
    ctx = ctx_of(request)
    filename = body.get("Filename") if isinstance(body, dict) else None
    job_class = MediaJob if plan.media else ArchiveJob
    job = job_class(plan, _transcoder(ctx), _content_filename(str(filename)) if filename else None)
    return await submit_job(request, job, body if isinstance(body, dict) else {})


async def _plan(request: web.Request, resources: list[str], media: bool, extended: bool, transcode: str | None,
                lossy_quality: int | None, body: Any = None) -> archive_service.ArchivePlan:
    utf8 = _bool_field(body, "Utf8") if isinstance(body, dict) and "Utf8" in body else None  # overrides ZipUseUtf8
    return await archive_service.plan_archive(ctx_of(request), resources, media, extended, transcode, lossy_quality,
                                              utf8)


async def _post_answer(request: web.Request, body: Any, resources: list[str], media: bool, default_extended: bool,
                       default_filename: str) -> web.StreamResponse:
    """The POST routes: options, "Filename" and "Synchronous"/"Asynchronous" from the JSON body."""
    plan = await _plan(request, resources, media, *_options(body, default_extended, media), body=body)
    filename = body.get("Filename", default_filename) if isinstance(body, dict) else default_filename
    return await _answer(request, plan, str(filename), *_job_fields(body))


async def _get_answer(request: web.Request, resources: list[str], media: bool, extended: bool,
                      default_filename: str) -> web.StreamResponse:
    """The GET (and HEAD) routes: ?transcode, ?lossy-quality and ?filename from the query string."""
    transcode = _transfer_syntax(request.query["transcode"]) if "transcode" in request.query else None
    lossy_quality = _lossy_quality(request.query.get("lossy-quality"))
    filename = request.query.get("filename", default_filename)
    if request.method == "HEAD":  # the headers only: the resources are checked, no archive is planned
        await archive_service.require_resources(ctx_of(request), resources)
        return web.Response(headers=_zip_headers(filename))
    plan = await _plan(request, resources, media, extended, transcode, lossy_quality)
    return await _answer(request, plan, filename)


# --- one resource ------------------------------------------------------------------------------------
async def _single_get(request: web.Request, media: bool) -> web.StreamResponse:
    public_id = request.match_info["id"]
    return await _get_answer(request, [public_id], media, media and "extended" in request.query, f"{public_id}.zip")


async def _single_post(request: web.Request, media: bool) -> web.StreamResponse:
    public_id = request.match_info["id"]
    body = await json_body(request)
    return await _post_answer(request, body, [public_id], media, False, f"{public_id}.zip")


def _options(body: Any, default_extended: bool, media: bool) -> tuple[bool, str | None, int | None]:
    if not isinstance(body, dict):
        return (default_extended and media), None, None
    extended = _bool_field(body, "Extended") if "Extended" in body else default_extended
    transcode = body.get("Transcode")
    if transcode is not None and not isinstance(transcode, str):
        raise OrthancError(ErrorCode.BadFileFormat, "The field \"Transcode\" must be a string")
    return (extended and media), (_transfer_syntax(transcode) if transcode else None), \
        _lossy_quality(body.get("LossyQuality"))


@routes.get(f"/{LEVELS}/{ID}/archive")
async def get_archive(request: web.Request) -> web.StreamResponse:
    """Create ZIP archive (streamed; ?filename, ?transcode, ?lossy-quality)."""
    return await _single_get(request, media=False)


@routes.post(f"/{LEVELS}/{ID}/archive")
async def post_archive(request: web.Request) -> web.StreamResponse:
    """Create ZIP archive (Synchronous/Asynchronous, Transcode, Priority, Filename)."""
    return await _single_post(request, media=False)


@routes.get(f"/{LEVELS}/{ID}/media")
async def get_media(request: web.Request) -> web.StreamResponse:
    """Create DICOMDIR media (ZIP with a DICOMDIR; ?extended, ?filename, ?transcode)."""
    return await _single_get(request, media=True)


@routes.post(f"/{LEVELS}/{ID}/media")
async def post_media(request: web.Request) -> web.StreamResponse:
    """Create DICOMDIR media (Synchronous/Asynchronous, Extended, Transcode, Priority, Filename)."""
    return await _single_post(request, media=True)


# --- several resources -----------------------------------------------------------------------------
async def _batch_post(request: web.Request, media: bool, default_extended: bool) -> web.StreamResponse:
    body = await json_body(request)
    if body == {} and not (await request.read()).strip():
        raise OrthancError(ErrorCode.BadFileFormat, "Expected a list of resources to archive in the body")
    return await _post_answer(request, body, _resources_from_body(body), media, default_extended, "Archive.zip")


async def _batch_get(request: web.Request, media: bool, default_extended: bool) -> web.StreamResponse:
    resources = [r for r in request.query.get("resources", "").split(",") if r]
    if not resources:
        raise OrthancError(ErrorCode.BadRequest, "The GET argument \"resources\" must list Orthanc identifiers")
    extended = media and (default_extended or bool_arg(request, "extended"))
    return await _get_answer(request, resources, media, extended, "Archive.zip")


@routes.post("/tools/create-archive")
async def create_archive(request: web.Request) -> web.StreamResponse:
    """Create ZIP archive of several resources ({"Resources": [...]} or a list of IDs)."""
    return await _batch_post(request, media=False, default_extended=False)


@routes.get("/tools/create-archive")
async def create_archive_get(request: web.Request) -> web.StreamResponse:
    """Create ZIP archive of several resources (?resources=id1,id2, ?filename, ?transcode)."""
    return await _batch_get(request, media=False, default_extended=False)


@routes.post("/tools/create-media")
async def create_media(request: web.Request) -> web.StreamResponse:
    """Create DICOMDIR media of several resources."""
    return await _batch_post(request, media=True, default_extended=False)


@routes.get("/tools/create-media")
async def create_media_get(request: web.Request) -> web.StreamResponse:
    """Create DICOMDIR media of several resources (?resources=id1,id2, ?extended)."""
    return await _batch_get(request, media=True, default_extended=False)


@routes.post("/tools/create-media-extended")
async def create_media_extended(request: web.Request) -> web.StreamResponse:
    """Create extended DICOMDIR media of several resources."""
    return await _batch_post(request, media=True, default_extended=True)


@routes.get("/tools/create-media-extended")
async def create_media_extended_get(request: web.Request) -> web.StreamResponse:
    """Create extended DICOMDIR media of several resources (?resources=id1,id2)."""
    return await _batch_get(request, media=True, default_extended=True)
