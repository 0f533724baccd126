"""WADO-RS: retrieve studies, series and instances (multipart/related application/dicom, streamed), their
metadata (DICOM JSON or XML) and bulk data (the plugin's WadoRs.cpp).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import orjson
from aiohttp import web

from ..dicom import dicomweb_encode as dicomweb_json
from ..dicom import transcode
from ..dicom.matching import parse_tag
from ..errors import ErrorCode, OrthancError
from ..model import ResourceLevel
from ..services import dicomweb as service
from ..services import tags as tags_service
from .common import (
    MultipartWriter,
    bad_request,
    base_url,
    ctx_of,
    dicom_json_response,
    negotiate,
    option,
)

logger = logging.getLogger(__name__)

EXPLICIT_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2.1"
INLINE_REPLACE_BYTES: Final = 256 * 1024
BATCH: Final = 16       # files read (and transcoded) per io-pool hop
READ_AHEAD: Final = 2   # batches read while the previous parts are being sent


def _ids(request: web.Request) -> tuple[str, str, str]:
    info = request.match_info
    return info.get("study", ""), info.get("series", ""), info.get("instance", "")


async def locate(request: web.Request, level: ResourceLevel) -> str:
    study, series, instance = _ids(request)
    return await service.locate(ctx_of(request), level, study, series, instance)


# --- retrieve ---------------------------------------------------------------------------------------------

def accept_dicom(request: web.Request) -> str | None:
    """AcceptMultipartDicom: the transfer syntax to send (None = as stored). Explicit little endian by default;
    transfer-syntax=* keeps the stored one; anything but multipart/related; type=application/dicom is a 400."""
    header = request.headers.get("Accept")
    if header is None:
        return EXPLICIT_LITTLE_ENDIAN
    found = negotiate(header, ("multipart/related",))
    if found is None:
        raise bad_request(f"This WADO-RS plugin cannot generate the following content type: {header}")
    params = found[1].params
    if "type" in params and params["type"].lower() != "application/dicom":
        raise bad_request("This WADO-RS plugin only supports application/dicom return type for DICOM retrieval "
                          f"({params['type']})")
    syntax = params.get("transfer-syntax")
    if syntax is None:
        return EXPLICIT_LITTLE_ENDIAN
    if syntax == "*":
        return None
    from ..dicom.transfer_syntaxes import KNOWN_SYNTAXES

    if syntax not in KNOWN_SYNTAXES:
        raise bad_request(f"Unsupported transfer syntax in WADO-RS: {syntax}")
    return syntax


def _prepare(ctx: service.ServerContext, ref: service.InstanceRef, target: str | None) -> bytes:
    """Blocking: the file of one instance in the transfer syntax asked for."""
    data = service.read_instance_file(ctx, ref)
    if target is None or ref.transfer_syntax == target:
        return data
    try:
        return transcode.transcode_file(data, target)
    except OrthancError:
        raise
    except Exception as exc:  # the codecs raise many kinds of errors
        raise OrthancError(ErrorCode.NotAcceptable, f"Cannot transcode to {target}: {exc}") from None


def _prepare_batch(ctx: service.ServerContext, refs: list[service.InstanceRef], target: str | None) -> list[bytes]:
    return [_prepare(ctx, ref, target) for ref in refs]


async def retrieve(request: web.Request, level: ResourceLevel) -> web.StreamResponse:
    """Send the instances of a study, a series or one instance, one part each. Files are read (and transcoded)
    BATCH at a time in the io pool, READ_AHEAD batches ahead of the parts being sent."""
    target = accept_dicom(request)
    ctx = ctx_of(request)
    public_id = await locate(request, level)
    refs = await service.instances_of(ctx, level, public_id)
    if not refs:
        raise OrthancError(ErrorCode.InexistentItem, "No instance to send")
    batches = [refs[i:i + BATCH] for i in range(0, len(refs), BATCH)]
    pending: list[asyncio.Future[list[bytes]]] = []

    def start(index: int) -> None:
        if index < len(batches):
            pending.append(asyncio.ensure_future(ctx.executors.run_io(_prepare_batch, ctx, batches[index], target)))

    for i in range(READ_AHEAD):
        start(i)
    writer = MultipartWriter(request, "application/dicom")
    try:
        for i in range(len(batches)):
            files = await pending[i]  # an error before the first part is still a proper HTTP error
            start(i + READ_AHEAD)
            await writer.write_many(files)
    except BaseException as exc:
        for fut in pending:
            fut.cancel()
        await asyncio.gather(*pending, return_exceptions=True)  # nothing left running, no error unretrieved
        if writer.started and isinstance(exc, OrthancError):
            # Parts were sent already: no error answer is possible any more; cut the answer short, so that
            # the client sees an incomplete multipart rather than a silently shorter one.
            logger.error("WADO-RS retrieve of %s interrupted: %s", public_id, exc.details or exc.code.description)
            if request.transport is not None:
                request.transport.close()
            return writer.response
        raise
    return await writer.finish()


# --- metadata ---------------------------------------------------------------------------------------------

def accept_metadata(request: web.Request) -> bool:
    """AcceptMetadata: False = DICOM JSON; True = multipart/related; type=application/dicom+xml."""
    header = request.headers.get("Accept")
    if header is None:
        return False
    found = negotiate(header, ("application/dicom+json", "application/json", "multipart/related"))
    if found is None:
        raise bad_request(f"This WADO-RS plugin cannot generate the following content type: {header}")
    offer, media = found
    if offer != "multipart/related":
        return False
    kind = media.params.get("type")
    if kind is None:
        raise bad_request("Missing \"type\" in multipart/related accept type")
    if kind != "application/dicom+xml":
        raise bad_request(f"This WADO-RS plugin only supports application/dicom+xml type for multipart/related "
                          f"accept ({kind})")
    if "transfer-syntax" in media.params:
        raise bad_request(f"This WADO-RS plugin cannot change the transfer syntax to {media.params['transfer-syntax']}")
    return True


async def _answer_metadata(request: web.Request, joined: bytes, xml: bool) -> web.StreamResponse:
    """Serialized instances (joined with ",", base URL placeholder) as JSON, or as multipart XML."""
    base = base_url(request).encode()
    placeholder = service.WADO_BASE_PLACEHOLDER.encode()
    if len(joined) > INLINE_REPLACE_BYTES:  # a big series: the replace runs off the loop
        joined = await ctx_of(request).executors.run_cpu(joined.replace, placeholder, base)
    else:
        joined = joined.replace(placeholder, base)
    body = b"[" + joined + b"]"
    if not xml:
        return dicom_json_response(body)
    ctx = ctx_of(request)
    items = await ctx.executors.run_cpu(orjson.loads, body)
    writer = MultipartWriter(request, "application/dicom+xml")
    for item in items:
        await writer.write(dicomweb_json.to_xml(item).encode("utf-8"))
    return await writer.finish()


def _mode(request: web.Request, level: ResourceLevel) -> str:
    name = "StudiesMetadata" if level is ResourceLevel.STUDY else "SeriesMetadata"
    return str(option(ctx_of(request), name, "Full"))


def _extrapolated(request: web.Request, level: ResourceLevel) -> list[int]:
    name = "StudiesMetadataExtrapolatedTags" if level is ResourceLevel.STUDY else "SeriesMetadataExtrapolatedTags"
    return [parse_tag(str(t)) for t in option(ctx_of(request), name, []) or []]


async def _series_parts(request: web.Request, level: ResourceLevel, public_id: str, study_uid: str) -> bytes:
    """The metadata of every series of a study (or of one series), joined."""
    ctx = ctx_of(request)
    mode = _mode(request, level)
    if mode != "Full":
        parts = await service.main_tags_metadata(ctx, level, public_id,
                                                 _extrapolated(request, level) if mode == "Extrapolate" else [])
        return b",".join(parts)
    if level is ResourceLevel.SERIES:
        series = [(public_id, request.match_info["series"])]
    else:
        found = await ctx.index.find_internal(public_id, ResourceLevel.STUDY)
        children = await ctx.index.expand_children(found[0], ResourceLevel.STUDY, ResourceLevel.SERIES) if found else []
        series = [(child.public_id, child.main_tags.get("0020,000e", "")) for child in children]
    chunks = [await service.series_metadata(ctx, sid, study_uid, suid) for sid, suid in sorted(series)]
    return b",".join(c for c in chunks if c)


async def study_metadata(request: web.Request) -> web.StreamResponse:
    xml = accept_metadata(request)
    public_id = await locate(request, ResourceLevel.STUDY)
    joined = await _series_parts(request, ResourceLevel.STUDY, public_id, request.match_info["study"])
    return await _answer_metadata(request, joined, xml)


async def series_metadata(request: web.Request) -> web.StreamResponse:
    xml = accept_metadata(request)
    public_id = await locate(request, ResourceLevel.SERIES)
    joined = await _series_parts(request, ResourceLevel.SERIES, public_id, request.match_info["study"])
    return await _answer_metadata(request, joined, xml)


async def instance_metadata(request: web.Request) -> web.StreamResponse:
    xml = accept_metadata(request)
    ctx = ctx_of(request)
    public_id = await locate(request, ResourceLevel.INSTANCE)
    refs = await service.instances_of(ctx, ResourceLevel.INSTANCE, public_id)
    study, series, _ = _ids(request)
    parts = await service.instances_json(ctx, refs, study, series, service.WADO_BASE_PLACEHOLDER)
    return await _answer_metadata(request, b",".join(parts), xml)


# --- bulk data ----------------------------------------------------------------------------------------------

def accept_bulk(request: web.Request) -> None:
    header = request.headers.get("Accept")
    if header is None:
        return
    found = negotiate(header, ("multipart/related",))
    if found is None:
        raise bad_request(f"This WADO-RS plugin cannot generate the following bulk data type: {header}")
    params = found[1].params
    # "*/*" (dicomweb-client's default) is accepted too, where the plugin answers 400
    if "type" in params and params["type"].lower() not in ("application/octet-stream", "*/*", "application/*"):
        raise bad_request("This WADO-RS plugin only supports application/octet-stream return type for bulk data "
                          f"retrieval ({params['type']})")
    if "range" in params:
        raise bad_request("This WADO-RS plugin does not support Range retrieval, it can only return entire bulk "
                          "data object")


async def bulk(request: web.Request) -> web.StreamResponse:
    """The value a BulkDataURI points at: {seq}/{1-based item}/.../{tag}; 7fe00010 sends every frame."""
    accept_bulk(request)
    ctx = ctx_of(request)
    public_id = await locate(request, ResourceLevel.INSTANCE)
    path = [p for p in request.match_info["path"].split("/") if p]
    if not path:
        raise bad_request("Empty bulk data URI")
    writer = MultipartWriter(request, "application/octet-stream")
    if len(path) == 1 and path[0].lower() == "7fe00010":
        frames = await tags_service.with_dataset(ctx, public_id, _pixel_fragments, whole=True)
        for frame in frames:
            await writer.write(frame)
        return await writer.finish()
    if len(path) % 2 != 1:
        raise bad_request(f"Bulk data URI in WADO-RS should have an odd number of items: {'/'.join(path)}")
    content_path: list[str] = []
    for i in range(len(path) // 2):
        try:
            index = int(path[2 * i + 1])
        except ValueError:
            raise bad_request(f"Bad sequence index in bulk data URI: {'/'.join(path)}") from None
        content_path += [path[2 * i], str(index - 1)]
    content_path.append(path[-1])
    value = await tags_service.with_dataset(ctx, public_id, _bulk_value, content_path, whole=True)
    if value is None:
        raise OrthancError(ErrorCode.InexistentItem, f"No bulk data at {'/'.join(path)}")
    await writer.write(value)
    return await writer.finish()


def _bulk_value(loaded: tags_service.LoadedDataset, path: list[str]) -> bytes | None:
    from ..dicom.content import list_content

    try:
        value = list_content(loaded.ds, path)
    except (OrthancError, KeyError, ValueError, IndexError):
        return None
    return value if isinstance(value, bytes) else None


def _pixel_fragments(loaded: tags_service.LoadedDataset) -> list[bytes]:
    """The items of the pixel data as /content/7fe0-0010 lists them: the whole value when native, else the
    basic offset table then each fragment."""
    from ..dicom.content import pixel_data_fragments

    ds = loaded.ds
    if 0x7FE00010 not in ds:
        raise OrthancError(ErrorCode.InexistentItem, "No pixel data")
    return pixel_data_fragments(ds.get_item(0x7FE00010))
