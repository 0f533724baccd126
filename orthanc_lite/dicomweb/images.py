"""Pixels over DICOMweb: WADO-RS frames, rendered and thumbnail, and WADO-URI (the plugin's
WadoRsRetrieveFrames.cpp, WadoRsRetrieveRendered.cpp, WadoUri.cpp). Decoding and rendering are the pixel
module's (services/pixels.py); they run in the cpu pool.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from ..dicom import pixels as pixel_module
from ..dicom import render
from ..errors import ErrorCode, OrthancError
from ..model import ResourceLevel
from ..services import dicomweb as service
from ..services import pixels
from ..services import tags as tags_service
from .common import MultipartWriter, bad_request, base_url, ctx_of, negotiate
from .wado import EXPLICIT_LITTLE_ENDIAN, locate

THUMBNAIL_SIZE: Final = 128


# --- frames -------------------------------------------------------------------------------------------------

def parse_frames(text: str) -> list[int]:
    """"1,3,5" (1-based; a space or a %2C also separates) -> 0-based indexes; a bad or 0 number is a 400."""
    out: list[int] = []
    for token in text.replace("%2C", ",").replace("%2c", ",").replace(" ", ",").split(","):
        if not token:
            continue
        if not token.isdigit() or int(token) == 0:
            raise bad_request(f"Bad frame number in WADO-RS: {token}")
        out.append(int(token) - 1)
    if not out:
        raise bad_request("No frame in WADO-RS")
    return out


def accept_frames(request: web.Request) -> str | None:
    """The transfer syntax of the frames: None = as stored (transfer-syntax=*); octet-stream alone means
    explicit little endian (uncompressed), as the plugin."""
    header = request.headers.get("Accept")
    if header is None:
        return EXPLICIT_LITTLE_ENDIAN
    found = negotiate(header, ("multipart/related",))
    if found is None:
        raise bad_request(f"This WADO-RS plugin cannot generate the following content type: {header}")
    params = found[1].params
    kind = params.get("type", "application/octet-stream").lower()
    syntax = params.get("transfer-syntax")
    if syntax == "*":
        return None
    if kind == "application/octet-stream":
        if syntax not in (None, EXPLICIT_LITTLE_ENDIAN):
            raise bad_request(f"Unsupported transfer syntax for application/octet-stream: {syntax}")
        return EXPLICIT_LITTLE_ENDIAN
    defaults = {"image/jpeg": "1.2.840.10008.1.2.4.50", "image/jls": "1.2.840.10008.1.2.4.80",
                "image/jp2": "1.2.840.10008.1.2.4.90", "image/jpx": "1.2.840.10008.1.2.4.92",
                "image/dicom-rle": "1.2.840.10008.1.2.5"}
    if kind not in defaults:
        raise bad_request(f"This WADO-RS plugin does not support this content type for frames: {kind}")
    return syntax or defaults[kind]


async def frames(request: web.Request) -> web.StreamResponse:
    """Frames of an instance (1-based list, or all), one part each."""
    ctx = ctx_of(request)
    target = accept_frames(request)
    public_id = await locate(request, ResourceLevel.INSTANCE)
    wanted = parse_frames(request.match_info["frames"]) if "frames" in request.match_info else None
    refs = await service.instances_of(ctx, ResourceLevel.INSTANCE, public_id)
    if target is not None and refs and refs[0].transfer_syntax != target:
        transcoded = await ctx.executors.run_cpu(_transcode_sync, ctx, refs[0], target)
        parts = await ctx.executors.run_cpu(_frames_of_file, transcoded, wanted)
    else:
        loaded = await tags_service.load(ctx, refs[0].attachment, whole=True)
        parts = await ctx.executors.run_cpu(loaded.run, _frames_of_loaded, wanted)
    syntax = target or (refs[0].transfer_syntax if refs else None)
    indexes = wanted if wanted is not None else list(range(len(parts)))
    study, series, instance = (request.match_info[k] for k in ("study", "series", "instance"))
    location = f"{base_url(request)}studies/{study}/series/{series}/instances/{instance}/frames/"
    writer = MultipartWriter(request, parts[0][1] if parts else "application/octet-stream")
    for index, (data, mime) in zip(indexes, parts):
        content_type = f"{mime}; transfer-syntax={syntax}" if syntax else mime
        await writer.write(data, content_type, {"Content-Location": f"{location}{index + 1}"})
    return await writer.finish()


def _transcode_sync(ctx: Any, ref: service.InstanceRef, target: str) -> bytes:
    from .wado import _prepare

    return _prepare(ctx, ref, target)


def _frames_of_file(data: bytes, wanted: list[int] | None) -> list[tuple[bytes, str]]:
    ds = pixel_module.load_dataset(data)
    indexes = wanted if wanted is not None else list(range(pixel_module.frame_count(ds)))
    return [_checked_frame(ds, i) for i in indexes]


def _frames_of_loaded(loaded: tags_service.LoadedDataset, wanted: list[int] | None) -> list[tuple[bytes, str]]:
    indexes = wanted if wanted is not None else list(range(pixel_module.frame_count(loaded.ds)))
    return [_checked_frame(loaded.ds, i) for i in indexes]


def _checked_frame(ds: Any, index: int) -> tuple[bytes, str]:
    try:
        return pixel_module.raw_frame(ds, index)
    except OrthancError as exc:
        if exc.code is ErrorCode.ParameterOutOfRange:
            raise OrthancError(ErrorCode.ParameterOutOfRange, f"Inexistent frame: {index + 1}", http_status=400) from None
        raise


# --- rendered and thumbnail -----------------------------------------------------------------------------------

def _render_mime(request: web.Request) -> str:
    header = request.headers.get("Accept")
    found = negotiate(header, ("image/jpeg", "image/png", "image/gif"))
    if found is None:
        raise OrthancError(ErrorCode.NotAcceptable, f"Cannot generate this rendered content type: {header}")
    return "image/jpeg" if found[0] == "image/gif" else found[0]


def _render_args(request: web.Request, thumbnail: bool) -> tuple[Any, int]:
    query = request.query
    width = height = 0
    center = window_width = None
    if thumbnail:
        width = height = THUMBNAIL_SIZE
    if "viewport" in query:
        parts = query["viewport"].split(",")
        try:
            width, height = int(parts[0] or 0), int(parts[1] or 0) if len(parts) > 1 else 0
        except ValueError:
            raise bad_request(f"Bad viewport: {query['viewport']}") from None
    if "window" in query:
        parts = query["window"].split(",")
        try:
            center, window_width = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            raise bad_request(f"Bad window: {query['window']}") from None
    quality = 90
    if "quality" in query:
        if not query["quality"].isdigit() or not 1 <= int(query["quality"]) <= 100:
            raise bad_request(f"Bad quality: {query['quality']}")
        quality = int(query["quality"])
    args = pixels.RenderArgs(window_center=center, window_width=window_width, width=max(width, 0),
                             height=max(height, 0), smooth=True)
    return args, quality


async def rendered(request: web.Request, level: ResourceLevel, thumbnail: bool = False) -> web.StreamResponse:
    """A frame rendered as JPEG (default) or PNG; for a study or series, its first instance."""
    ctx = ctx_of(request)
    mime = _render_mime(request)
    args, quality = _render_args(request, thumbnail)
    public_id = await locate(request, level)
    refs = await service.instances_of(ctx, level, public_id)
    if not refs:
        raise OrthancError(ErrorCode.InexistentItem, "No instance to render")
    refs.sort(key=lambda r: r.public_id)
    frame = 0
    if "frame" in request.match_info:
        frame = parse_frames(request.match_info["frame"])[0]
    body = await pixels.rendered(ctx, refs[0].public_id, frame, args, mime, quality)
    return web.Response(body=body, content_type=mime)


# --- WADO-URI -----------------------------------------------------------------------------------------------

async def wado_uri(request: web.Request) -> web.StreamResponse:
    """WADO-URI: requestType=WADO, objectUID (studyUID and seriesUID checked when given), contentType
    application/dicom, image/jpeg (the default) or image/png."""
    ctx = ctx_of(request)
    query = request.query
    if query.get("requestType") != "WADO":
        raise bad_request("WADO-URI: Invalid requestType")
    sop = query.get("objectUID", "")
    if not sop:
        raise bad_request("WADO-URI: No SOP Instance UID provided")
    content_type = query.get("contentType", "image/jpeg")
    from ..dicom.matching import IndexQuery, dicom_constraint
    from ..services.find import FindRequest, find

    constraint = dicom_constraint(0x00080018, sop, vr="UI")
    result = await find(ctx, FindRequest(IndexQuery(ResourceLevel.INSTANCE, (constraint,) if constraint else (),
                                                    limit=2), requested_tags=(0x0020000D, 0x0020000E)))
    if len(result.answers) != 1:
        raise OrthancError(ErrorCode.UnknownResource, f"WADO-URI: No such SOP Instance UID: {sop}")
    answer = result.answers[0]
    for name, tag in (("studyUID", 0x0020000D), ("seriesUID", 0x0020000E)):
        given = query.get(name, "")
        if given and given != (answer.value(tag) or ""):
            raise bad_request(f"WADO-URI: The {name} does not match the instance")
    if content_type == "application/dicom":
        refs = await service.instances_of(ctx, ResourceLevel.INSTANCE, answer.public_id)
        data = await ctx.executors.run_io(service.read_instance_file, ctx, refs[0])
        return web.Response(body=data, content_type="application/dicom")
    if content_type in ("image/jpeg", "image/jpg", "image/png"):
        mime = "image/png" if content_type == "image/png" else "image/jpeg"
        body = await pixels.image(ctx, answer.public_id, 0, render.Mode.PREVIEW, mime, 90)
        return web.Response(body=body, content_type=mime)
    raise bad_request(f"WADO-URI: Unsupported content type: {content_type}")
