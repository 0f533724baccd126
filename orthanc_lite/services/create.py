"""POST /tools/create-dicom (OrthancRestAnonymizeModify.cpp CreateDicomV2): build an instance, or a series when
Content is an array, optionally below an existing parent whose module tags are copied, and store it."""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset

from ..dicom import create as builder
from ..dicom.values import ENCODINGS, read_dataset, tag_string
from ..errors import ErrorCode, OrthancError
from ..model import Origin, ResourceLevel, StoreResult, StoreStatus
from . import delete as delete_service
from .context import ServerContext
from .modify import default_private_creator, write_dataset
from .store import store_bytes
from .tags import MODULE_TAGS, first_child_attachment

_LEVEL_MODULES = {ResourceLevel.PATIENT: ("patient",), ResourceLevel.STUDY: ("study", "patient"),
                  ResourceLevel.SERIES: ("series", "study", "patient")}
_TERM_TO_ENCODING = {term: name for name, term in ENCODINGS.items() if term}


def _bool(body: dict[str, Any], name: str, default: bool) -> bool:
    if name not in body:
        return default
    if not isinstance(body[name], bool):
        raise OrthancError(ErrorCode.BadRequest)
    return bool(body[name])


async def create_dicom(ctx: ServerContext, body: Any, origin: Origin) -> dict[str, Any]:
    """The answer: the stored instance ({ID, ParentPatient, ..., Status}) or, for an array of Content, the
    series ({ID, Path, Status})."""
    if not isinstance(body, dict):
        raise OrthancError(ErrorCode.BadRequest)
    if "Tags" not in body:
        return await _create_v1(ctx, body, origin)
    tags = body["Tags"]
    if not isinstance(tags, dict):
        raise OrthancError(ErrorCode.BadRequest)
    encoding = ctx.default_encoding
    if "SpecificCharacterSet" in tags:
        term = str(tags["SpecificCharacterSet"])
        if term not in _TERM_TO_ENCODING:
            raise OrthancError(ErrorCode.ParameterOutOfRange, f"Unknown specific character set: {term}")
        encoding = _TERM_TO_ENCODING[term]

    parent_level: ResourceLevel | None = None
    sibling: Dataset | None = None
    if "Parent" in body:
        parent = str(body["Parent"])
        located = await ctx.index.find_internal(parent)
        if located is None:
            raise OrthancError(ErrorCode.CreateDicomBadParent)
        parent_level = located[1]
        if parent_level is ResourceLevel.INSTANCE:
            raise OrthancError(ErrorCode.CreateDicomParentIsInstance)
        attachment = await first_child_attachment(ctx, parent)
        if attachment is None:
            raise OrthancError(ErrorCode.InternalError)
        data = await ctx.storage.read(attachment.uuid, attachment.compression != 1)
        sibling = await ctx.executors.run_cpu(read_dataset, data, ctx.default_encoding, True)
        sibling_encoding = await ctx.executors.run_cpu(_encoding_of, sibling)
        if sibling_encoding is not None:
            encoding = sibling_encoding

    decode_binary = _bool(body, "InterpretBinaryTags", True)
    if "PrivateCreator" in body and not isinstance(body["PrivateCreator"], str):
        raise OrthancError(ErrorCode.BadRequest)
    private_creator = str(body.get("PrivateCreator", default_private_creator(ctx)))
    force = _bool(body, "Force", False)
    content = body.get("Content")
    if content is not None and not isinstance(content, (str, list)):
        raise OrthancError(ErrorCode.CreateDicomUseDataUriScheme)

    base = await ctx.executors.run_cpu(_base_instance, encoding, sibling, parent_level, tags, decode_binary,
                                       private_creator, force)
    if isinstance(content, list) and content:
        return await _create_series(ctx, base, content, decode_binary, private_creator, force, origin)
    if isinstance(content, str):
        await ctx.executors.run_cpu(builder.embed_content, base, content)
    return (await _store(ctx, base, origin)).to_json()


def _encoding_of(ds: Dataset) -> str | None:
    """The Orthanc encoding of the sibling's SpecificCharacterSet (its first term); None without one."""
    terms = (tag_string(ds, 0x00080005) or "").split("\\")
    return _TERM_TO_ENCODING.get(terms[0].strip().upper()) if terms[0].strip() else None


def _base_instance(encoding: str, sibling: Dataset | None, parent_level: ResourceLevel | None, tags: dict[str, Any],
                   decode_binary: bool, private_creator: str, force: bool) -> Dataset:
    ds = builder.new_dataset(encoding)
    if sibling is not None and parent_level is not None:
        modules: frozenset[int] = frozenset()
        for module in _LEVEL_MODULES[parent_level]:
            modules |= MODULE_TAGS[module]
        builder.copy_parent_tags(ds, sibling, modules)
    builder.set_creation_dates(ds, parent_level)
    builder.inject_tags(ds, tags, decode_binary, private_creator, force)
    return ds


async def _store(ctx: ServerContext, ds: Dataset, origin: Origin) -> StoreResult:
    data = await ctx.executors.run_cpu(write_dataset, ds)
    result = await store_bytes(ctx, data, origin)
    if result.status is StoreStatus.Failure:
        raise OrthancError(ErrorCode.InternalError, "Cannot store the created instance")
    return result


async def _create_series(ctx: ServerContext, base: Dataset, content: list[Any], decode_binary: bool,
                         private_creator: str, force: bool, origin: Origin) -> dict[str, Any]:
    """CreateSeries: one instance per item, numbered from 1; on error the half-made series is removed."""
    base.ImagesInAcquisition = str(len(content))
    base.NumberOfTemporalPositions = "1"
    series_id: str | None = None
    try:
        for index, item in enumerate(content, start=1):
            ds = await ctx.executors.run_cpu(_copy_dataset, base)
            payload: Any = item
            if isinstance(item, dict):
                if "Content" not in item:
                    raise OrthancError(ErrorCode.CreateDicomNoPayload)
                payload = item["Content"]
                if "Tags" in item:
                    await ctx.executors.run_cpu(builder.inject_tags, ds, item["Tags"], decode_binary,
                                                private_creator, force)
            if not isinstance(payload, str):
                raise OrthancError(ErrorCode.CreateDicomUseDataUriScheme)
            await ctx.executors.run_cpu(builder.embed_content, ds, payload)
            ds.InstanceNumber = str(index)
            ds.ImageIndex = index
            result = await _store(ctx, ds, origin)
            series_id = result.series_id
    except OrthancError:
        if series_id is not None:
            await delete_service.delete_resource(ctx, series_id, ResourceLevel.SERIES)
        raise
    return {"ID": series_id, "Path": f"/series/{series_id}", "Status": "Success"}


def _copy_dataset(ds: Dataset) -> Dataset:
    """ParsedDicomFile::Clone(false): a copy with a new SOPInstanceUID."""
    import copy
    from ..dicom.modification import generate_identifier
    clone = copy.deepcopy(ds)
    clone.SOPInstanceUID = generate_identifier(ResourceLevel.INSTANCE)
    return clone


async def _create_v1(ctx: ServerContext, body: dict[str, Any], origin: Origin) -> dict[str, Any]:
    """The deprecated flat form ({"PatientName": "..."}, "PixelData" as a data URI)."""
    for value in body.values():
        if not isinstance(value, str):
            raise OrthancError(ErrorCode.CreateDicomNotString)
    ds = await ctx.executors.run_cpu(_v1_instance, ctx.default_encoding, body)
    return (await _store(ctx, ds, origin)).to_json()


def _v1_instance(encoding: str, body: dict[str, str]) -> Dataset:
    from ..dicom.modification import parse_tag_or_fail, set_value
    ds = builder.new_dataset(encoding)
    for name, value in body.items():
        tag = parse_tag_or_fail(name)
        if tag == builder.PIXEL_DATA:
            builder.embed_content(ds, value)
        else:
            set_value(ds, tag, value, False, "")
    return ds
