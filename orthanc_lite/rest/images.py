"""Image routes of instances: /preview, /image-uint8|uint16|int16, /rendered, /matlab, /numpy, /frames/{n}/...,
/frames/{n}/raw(.gz), /series/{id}/numpy (~ the image part of OrthancRestResources.cpp).

Orthanc's answers are kept: a frame that cannot be decoded is a bare 415 (or a redirect to the placeholder
with ?returnUnsupportedImage); a missing frame, an unknown instance or an Accept no encoder matches is a bare
404, since Orthanc's handler then answers nothing.
"""

from __future__ import annotations

import gzip
import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from ..dicom import render
from ..dicom.transfer_syntaxes import ORTHANC_SYNTAXES
from ..errors import ErrorCode, OrthancError
from ..services import pixels as svc
from ..services.context import ServerContext
from .helpers import bool_arg, ctx_of

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()
Producer = Callable[[str, int], Awaitable[bytes]]  # (MIME type, JPEG quality) -> encoded image
# (context, instance id, frame, MIME type, JPEG quality) -> encoded image
FrameProducer = Callable[[ServerContext, str, int, str, int], Awaitable[bytes]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ID: Final = "{id}"
FRAME: Final = "{frame}"
_MODES: Final = {mode.value: mode for mode in render.Mode}
_ENCODERS: Final = (render.PNG, render.JPEG, render.PAM)  # registration order: the first wins on */*
_UINT: Final = re.compile(r"^\+?[0-9]+$")


def _frame(request: web.Request) -> int | None:
    """The {frame} URI component as boost::lexical_cast<unsigned int> reads it; None when it is not one."""
    text = request.match_info.get("frame", "0")
    if not _UINT.match(text) or int(text) > 0xFFFFFFFF:
        return None
    return int(text)


def _negotiate(accept: str) -> str | None:
    """HttpContentNegociation: the best quality among image/png, image/jpeg and PAM; None when none fits."""
    if not accept.strip():
        return render.PNG
    best: tuple[float, int, str] | None = None
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        quality = 1.0
        for param in fields[1:]:
            if param.lower().startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        for rank, mime in enumerate(_ENCODERS):
            kind, sub = mime.split("/")
            if media in ("*/*", f"{kind}/*", mime) and quality > 0:
                specificity = 2 if media == mime else (1 if media.endswith("/*") and media != "*/*" else 0)
                candidate = (quality, specificity, mime)
                if best is None or candidate[:2] > best[:2]:
                    best = candidate
                break
    return best[2] if best else None


def _quality(request: web.Request) -> int:
    """?quality for JPEG (1..100, default 90); Orthanc validates it whatever the format."""
    text = request.query.get("quality", "90")
    if not _UINT.match(text) or not 1 <= int(text) <= 100:
        raise OrthancError(ErrorCode.BadRequest, f"Bad quality for a JPEG encoding (must be a number between 0 and "
                                                 f"100): {text}")
    return int(text)


def _unsupported(request: web.Request) -> web.StreamResponse:
    if "returnUnsupportedImage" in request.query:
        depth = len([p for p in request.path.split("/") if p]) - 1
        raise web.HTTPMovedPermanently("../" * depth + "app/images/unsupported.png")
    return web.Response(status=415)


async def _image_answer(request: web.Request, produce: Producer) -> web.StreamResponse:
    """Run an image producer with Orthanc's IDecodedFrameHandler error rules."""
    mime = _negotiate(request.headers.get("Accept", ""))
    try:
        quality = _quality(request)
        if mime is None:
            return web.Response(status=404)
        body = await produce(mime, quality)
    except OrthancError as exc:
        if exc.code in (ErrorCode.ParameterOutOfRange, ErrorCode.UnknownResource):
            return web.Response(status=404)
        logger.info("Cannot produce the image %s: %s", request.path, exc.details or exc.code.description)
        return _unsupported(request)
    return web.Response(body=body, content_type=mime)


async def _frame_image(request: web.Request, produce: FrameProducer) -> web.StreamResponse:
    """The {frame} (a bare 404 when it is not a number) of the {id} instance, encoded by _image_answer."""
    frame = _frame(request)
    if frame is None:
        return web.Response(status=404)
    ctx = ctx_of(request)
    public_id = request.match_info["id"]
    return await _image_answer(request, lambda mime, quality: produce(ctx, public_id, frame, mime, quality))


def _image_handler(mode: render.Mode, doc: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _frame_image(request, lambda ctx, public_id, frame, mime, quality:
                                  svc.image(ctx, public_id, frame, mode, mime, quality))

    handler.__doc__ = doc
    return handler


for _mode, _doc in (
    (render.Mode.PREVIEW, "Decode a frame (preview): grayscale stretched to 0..255, PNG, JPEG or PAM by Accept."),
    (render.Mode.UINT8, "Decode a frame (uint8): grayscale values clipped to 0..255."),
    (render.Mode.UINT16, "Decode a frame (uint16): grayscale values clipped to 0..65535."),
    (render.Mode.INT16, "Decode a frame (int16): grayscale values clipped to -32768..32767."),
):
    routes.get(f"/instances/{ID}/{_mode.value}")(_image_handler(_mode, _doc))
    routes.get(f"/instances/{ID}/frames/{FRAME}/{_mode.value}")(_image_handler(_mode, _doc))


def _double(request: web.Request, name: str) -> float | None:
    if name not in request.query:
        return None
    try:
        value = float(request.query[name])
    except ValueError:
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Bad value for argument: {name}") from None
    if not math.isfinite(value):
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Bad value for argument: {name}")
    return value


def _size(request: web.Request, name: str) -> int:
    if name not in request.query:
        return 0
    text = request.query[name].strip()
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Bad value for argument: {name}")
    if int(text) < 0:
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Argument cannot be negative: {name}")
    return min(int(text), 65535)


def _render_args(request: web.Request) -> svc.RenderArgs:
    smooth = False
    if "smooth" in request.query:
        value = request.query["smooth"].strip().lower()
        if value not in ("true", "false", "1", "0", ""):
            raise OrthancError(ErrorCode.ParameterOutOfRange, "Bad value for argument: smooth")
        smooth = value in ("true", "1", "")
    return svc.RenderArgs(_double(request, "window-center"), _double(request, "window-width"),
                          _size(request, "width"), _size(request, "height"), smooth)


@routes.get(f"/instances/{ID}/rendered")
@routes.get(f"/instances/{ID}/frames/{FRAME}/rendered")
async def rendered(request: web.Request) -> web.StreamResponse:
    """Render a frame: rescale slope/intercept and windowing (defaults from the file), optional resize."""
    # _render_args runs inside the producer, so its errors follow _image_answer's rules (a bare 404).
    return await _frame_image(request, lambda ctx, public_id, frame, mime, quality:
                              svc.rendered(ctx, public_id, frame, _render_args(request), mime, quality))


@routes.get(f"/instances/{ID}/matlab")
@routes.get(f"/instances/{ID}/frames/{FRAME}/matlab")
async def matlab(request: web.Request) -> web.StreamResponse:
    """Decode a frame for Matlab/Octave (an expression to eval())."""
    frame = _frame(request)
    if frame is None:
        return web.Response(status=404)
    text = await svc.matlab(ctx_of(request), request.match_info["id"], frame)
    return web.Response(text=text, content_type="text/plain")


@routes.get(f"/instances/{ID}/frames/{FRAME}/raw")
async def raw_frame(request: web.Request) -> web.StreamResponse:
    """The raw (undecoded) content of one frame; the whole bitstream for a video."""
    frame = _frame(request)
    if frame is None:
        return web.Response(status=404)
    data, mime = await svc.raw_frame(ctx_of(request), request.match_info["id"], frame)
    return web.Response(body=data, content_type=mime)


@routes.get(f"/instances/{ID}/frames/{FRAME}/raw.gz")
async def raw_frame_gz(request: web.Request) -> web.StreamResponse:
    """The raw content of one frame, compressed with gzip."""
    frame = _frame(request)
    if frame is None:
        return web.Response(status=404)
    ctx = ctx_of(request)
    data, _ = await svc.raw_frame(ctx, request.match_info["id"], frame)
    body = await ctx.executors.run_cpu(gzip.compress, data)
    return web.Response(body=body, content_type="application/gzip")


def _numpy_response(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/octet-stream")


@routes.get(f"/instances/{ID}/numpy")
async def instance_numpy(request: web.Request) -> web.StreamResponse:
    """Decode every frame for numpy: (frames, height, width, channels), float32 rescaled unless ?rescale=0."""
    body = await svc.numpy_instance(ctx_of(request), request.match_info["id"], None,
                                    bool_arg(request, "rescale", True), bool_arg(request, "compress", False))
    return _numpy_response(body)


@routes.get(f"/instances/{ID}/frames/{FRAME}/numpy")
async def frame_numpy(request: web.Request) -> web.StreamResponse:
    """Decode one frame for numpy: (height, width, channels)."""
    frame = _frame(request)
    if frame is None:
        raise OrthancError(ErrorCode.ParameterOutOfRange, 'Expected an unsigned integer for the "frame" argument')
    body = await svc.numpy_instance(ctx_of(request), request.match_info["id"], frame,
                                    bool_arg(request, "rescale", True), bool_arg(request, "compress", False))
    return _numpy_response(body)


@routes.get(f"/series/{ID}/numpy")
async def series_numpy(request: web.Request) -> web.StreamResponse:
    """Decode a whole series for numpy, slices in spatial order: (frames, height, width, channels)."""
    body = await svc.numpy_series(ctx_of(request), request.match_info["id"],
                                  bool_arg(request, "rescale", True), bool_arg(request, "compress", False))
    return _numpy_response(body)


async def transcoded_file(request: web.Request, public_id: str) -> web.StreamResponse:
    """GET /instances/{id}/file?transcode=UID[&lossy-quality=Q]: the file converted to another transfer syntax."""
    target = request.query.get("transcode", "").strip()
    if target not in ORTHANC_SYNTAXES:
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Unknown transfer syntax: {target}")
    quality: int | None = None
    if "lossy-quality" in request.query:
        text = request.query["lossy-quality"]
        if not _UINT.match(text) or not 1 <= int(text) <= 100:
            raise OrthancError(ErrorCode.ParameterOutOfRange, f"Bad lossy quality: {text}")
        quality = int(text)
    body = await svc.transcoded_file(ctx_of(request), public_id, target, quality)
    filename = request.query.get("filename", f"{public_id}.dcm").replace('"', "")
    return web.Response(body=body, content_type="application/dicom",
                        headers={"Content-Disposition": f'filename="{filename}"'})
