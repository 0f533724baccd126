"""Decoded pixels of stored instances: images in Orthanc's extraction modes, rendered frames, raw frames,
numpy and Matlab exports, and transcoded files (~ the image routes of OrthancRestResources.cpp and
ServerContext::DecodeDicomFrame / Transcode).

A single-instance route runs in ONE cpu-pool hop: the index lookup (on the worker's own sqlite connection),
the file read (or the parsed-dataset cache), the decode, the rendering and the encoding; on a 64x64 preview
each extra hop between the loop and a pool cost as much as the decoding. The loop never touches pixels.
Never imports aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Final, TypeVar

import numpy as np

from ..dicom import pixels, render, transcode
from ..errors import ErrorCode, OrthancError
from ..model import AttachmentInfo, ResourceLevel
from .context import ServerContext
from .tags import LoadedDataset, child_instances, load, load_whole_sync, missing_file, resource_level

logger = logging.getLogger(__name__)

_SERIES_BATCH: Final = 8
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RenderArgs:
    """The arguments of /rendered; None for a windowing parameter means the file's default."""

    window_center: float | None = None
    window_width: float | None = None
    width: int = 0
    height: int = 0
    smooth: bool = False


def _dicom_file(public_id: str, exists: bool, attachment: AttachmentInfo | None) -> AttachmentInfo:
    """The instance's DICOM attachment: UnknownResource when the instance is not there, InexistentFile when it
    has no such attachment."""
    if not exists:
        raise OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {public_id}")
    if attachment is None:
        raise OrthancError(ErrorCode.InexistentFile, f"No DICOM file for instance {public_id}")
    return attachment


async def _attachment(ctx: ServerContext, public_id: str) -> AttachmentInfo:
    """The DICOM attachment of an instance in one index read."""
    attachments = await ctx.index.resource_attachments(public_id, ResourceLevel.INSTANCE)
    return _dicom_file(public_id, attachments is not None, (attachments or {}).get(1))


def _on_instance(ctx: ServerContext, public_id: str, fn: Callable[..., T], *args: Any) -> T:
    """In a worker thread: fn(loaded dataset, *args) for an instance, looked up and read in the same hop."""
    loaded = load_whole_sync(ctx, _dicom_file(public_id, *ctx.index.instance_dicom_file_sync(public_id)))
    return loaded.run(fn, *args)


async def _run_on_instance(ctx: ServerContext, public_id: str, fn: Callable[..., T], *args: Any) -> T:
    return await ctx.executors.run_cpu(_on_instance, ctx, public_id, fn, *args)


async def image(ctx: ServerContext, public_id: str, frame: int, mode: render.Mode, mime: str, quality: int) -> bytes:
    """/preview, /image-uint8, /image-uint16, /image-int16 of one frame, encoded as `mime`."""
    return await _run_on_instance(ctx, public_id, _image_sync, frame, mode, mime, quality)


def _layout(loaded: LoadedDataset) -> tuple[pixels.PixelLayout, bool]:
    """The pixel layout of a (cached) dataset and whether it is MONOCHROME1, read once per dataset: on a small
    image, reading them through pydicom took as long as the decoding."""
    found = loaded.memo.get("pixels.layout")
    if found is None:
        found = loaded.memo["pixels.layout"] = (pixels.layout(loaded.ds), pixels.is_monochrome1(loaded.ds))
    return found  # type: ignore[no-any-return]


def _image_sync(loaded: LoadedDataset, frame: int, mode: render.Mode, mime: str, quality: int) -> bytes:
    info, monochrome1 = _layout(loaded)
    decoded = pixels.decode_frame(loaded.ds, frame, info)
    return render.encode(render.extract(decoded, mode, mode is render.Mode.PREVIEW and monochrome1), mime, quality)


async def rendered(ctx: ServerContext, public_id: str, frame: int, args: RenderArgs, mime: str, quality: int) -> bytes:
    """/rendered: rescale, window, resize, then encode (RenderedFrameHandler)."""
    return await _run_on_instance(ctx, public_id, _rendered_sync, frame, args, mime, quality)


def _rendered_sync(loaded: LoadedDataset, frame: int, args: RenderArgs, mime: str, quality: int) -> bytes:
    ds = loaded.ds
    info, monochrome1 = _layout(loaded)
    decoded = pixels.decode_frame(ds, frame, info)
    intercept, slope = pixels.rescale(ds, frame)
    center, width = pixels.default_windowing(ds, frame)
    if args.window_center is not None:
        center = args.window_center
    if args.window_width is not None:
        width = args.window_width
    out = render.render(decoded, intercept, slope, center, width, args.width, args.height, args.smooth)
    if out.ndim == 2 and monochrome1:
        out = 255 - out
    return render.encode(out, mime, quality)


async def raw_frame(ctx: ServerContext, public_id: str, frame: int) -> tuple[bytes, str]:
    """/frames/{n}/raw: the undecoded bytes of one frame and their MIME type."""
    return await _run_on_instance(ctx, public_id, lambda item: pixels.raw_frame(item.ds, frame))


async def matlab(ctx: ServerContext, public_id: str, frame: int) -> str:
    """/matlab: one decoded frame as an Octave/Matlab expression."""
    return await _run_on_instance(ctx, public_id, lambda item: render.matlab(pixels.decode_frame(item.ds, frame)))


def _numpy_frames(loaded: LoadedDataset, frames: list[int] | None, rescale: bool) -> list[np.ndarray]:
    ds = loaded.ds
    if frames is None:
        count = pixels.frame_count(ds)
        if count == 0:
            raise OrthancError(ErrorCode.BadFileFormat, "Empty DICOM instance")
        frames = list(range(count))
    out = []
    for index in frames:
        decoded = pixels.decode_frame(ds, index)
        intercept, slope = pixels.rescale(ds, index)
        out.append(render.numpy_frame(decoded, rescale, intercept, slope))
    return out


async def numpy_instance(ctx: ServerContext, public_id: str, frame: int | None, rescale: bool, compress: bool) -> bytes:
    """/instances/{id}/numpy (all frames, 4-D) or /frames/{n}/numpy (one frame, 3-D)."""
    def run(item: LoadedDataset) -> bytes:
        frames = _numpy_frames(item, None if frame is None else [frame], rescale)
        return render.numpy_bytes(frames, frame is None, compress)

    return await _run_on_instance(ctx, public_id, run)


async def numpy_series(ctx: ServerContext, public_id: str, rescale: bool, compress: bool) -> bytes:
    """/series/{id}/numpy: every frame of every instance, slices in spatial order (SliceOrdering)."""
    _, level = await resource_level(ctx, public_id)
    if level is not ResourceLevel.SERIES:
        raise OrthancError(ErrorCode.UnknownResource, f"Unknown series: {public_id}")
    instances = await child_instances(ctx, public_id)
    if not instances:
        raise OrthancError(ErrorCode.BadFileFormat, "Empty series")
    positions: list[tuple[str, AttachmentInfo, Any]] = []
    for start in range(0, len(instances), _SERIES_BATCH):
        batch = instances[start:start + _SERIES_BATCH]
        loaded = await asyncio.gather(*(load(ctx, attachment, whole=True, keep=False) for _, attachment in batch))
        keys = await asyncio.gather(*(ctx.executors.run_cpu(item.run, _slice_key) for item in loaded))
        positions.extend((pid, attachment, key) for (pid, attachment), key in zip(batch, keys))
    ordered = _order_slices(positions)
    frames: list[np.ndarray] = []
    for _, attachment in ordered:
        item = await load(ctx, attachment, whole=True, keep=False)
        frames.extend(await ctx.executors.run_cpu(item.run, _numpy_frames, None, rescale))
    return await ctx.executors.run_cpu(render.numpy_bytes, frames, True, compress)


def _slice_key(loaded: LoadedDataset) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None, int | None]:
    ds = loaded.ds

    def floats(keyword: str, count: int) -> tuple[float, ...] | None:
        try:
            values = tuple(float(v) for v in ds.get(keyword) or ())
        except (TypeError, ValueError):
            return None
        return values if len(values) == count else None

    number: int | None
    try:
        number = int(ds.get("InstanceNumber")) if ds.get("InstanceNumber") not in (None, "") else None
    except (TypeError, ValueError):
        number = None
    return floats("ImagePositionPatient", 3), floats("ImageOrientationPatient", 6), number


def _order_slices(items: list[tuple[str, AttachmentInfo, Any]]) -> list[tuple[str, AttachmentInfo]]:
    """SliceOrdering: along the normal when every slice has a position and they share an orientation, else by
    InstanceNumber, else as listed."""
    orientations = {key[1] for _, _, key in items}
    if all(key[0] is not None for _, _, key in items) and len(orientations) == 1 and None not in orientations:
        orientation = np.array(next(iter(orientations)))
        normal = np.cross(orientation[:3], orientation[3:])
        ordered = sorted(items, key=lambda item: float(np.dot(normal, np.array(item[2][0]))))
    elif all(key[2] is not None for _, _, key in items):
        ordered = sorted(items, key=lambda item: item[2][2])
    else:
        ordered = items
    return [(pid, attachment) for pid, attachment, _ in ordered]


async def transcoded_file(ctx: ServerContext, public_id: str, target: str, quality: int | None = None) -> bytes:
    """/instances/{id}/file?transcode=: the stored file converted to `target` (in the cpu pool)."""
    attachment = await _attachment(ctx, public_id)
    try:
        data = await ctx.storage.read(attachment.uuid, attachment.compression != 1)
    except FileNotFoundError:
        raise missing_file(attachment.uuid) from None
    lossy = quality if quality is not None else int(ctx.settings.DicomLossyTranscodingQuality)
    return await ctx.executors.run_cpu(transcode.transcode_file, data, target, lossy)
