"""/studies/{id}/split and /studies/{id}/merge (Orthanc's SplitStudyJob and MergeStudyJob), expressed as
ModificationRuns: a fixed StudyInstanceUID, a new SeriesInstanceUID per source series, a new SOPInstanceUID per
instance, and the patient/study module tags of the target. The sources are removed unless KeepSource."""

from __future__ import annotations

from typing import Any

from ..dicom.dicom_json import tag_name
from ..dicom.modification import STUDY_UID, STRING_VRS, DicomPath, Modification, generate_identifier
from ..dicom.values import read_dataset, tag_string
from ..errors import ErrorCode, OrthancError
from ..model import Origin, ResourceLevel
from .context import ServerContext
from .modify import ModificationRun, read_bool
from .tags import MODULE_TAGS, first_child_attachment

_PATIENT_STUDY_TAGS = MODULE_TAGS["patient"] | MODULE_TAGS["study"]
_SPLIT_ALLOWED = _PATIENT_STUDY_TAGS - {STUDY_UID, 0x0020000E}


def _strings(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OrthancError(ErrorCode.BadFileFormat, f"List of strings expected in field: {name}")
    return list(value)


async def _require_study(ctx: ServerContext, study: str, verb: str) -> None:
    if await ctx.index.find_internal(study, ResourceLevel.STUDY) is None:
        raise OrthancError(ErrorCode.UnknownResource, f"Cannot {verb} unknown study {study}")


async def _instances_of(ctx: ServerContext, internal: int) -> list[str]:
    return [instance for instance, _series, _att in await ctx.index.descendant_attachments(internal)]



async def _parent_study(ctx: ServerContext, internal: int, levels_up: int) -> str | None:
    info = await ctx.index.expand_ancestor(internal, levels_up, ResourceLevel.STUDY)
    return None if info is None else info.public_id


async def build_split(ctx: ServerContext, study: str, body: dict[str, Any], origin: Origin) -> ModificationRun:
    await _require_study(ctx, study, "split")
    instances: list[str] = []
    found = False
    for name, level in (("Series", ResourceLevel.SERIES), ("Instances", ResourceLevel.INSTANCE)):
        if name not in body:
            continue
        for public_id in _strings(body, name):
            located = await ctx.index.find_internal(public_id, level)
            parent = None if located is None else await _parent_study(ctx, located[0], int(level) - 1)
            if located is None or parent != study:
                word = "series" if level is ResourceLevel.SERIES else "instance"
                raise OrthancError(ErrorCode.UnknownResource,
                                   f"This {word} does not belong to the study to be split: {public_id}")
            instances.extend(i for i in await _instances_of(ctx, located[0]) if i not in instances)
            found = True
    if not found:
        raise OrthancError(ErrorCode.BadRequest, "Both the \"Series\" and the \"Instances\" fields are missing")
    keep_source = read_bool(body, "KeepSource", False)
    target_uid = generate_identifier(ResourceLevel.STUDY)
    modification = Modification(level=ResourceLevel.SERIES)
    if "Remove" in body:
        if not isinstance(body["Remove"], list) or not all(isinstance(v, str) for v in body["Remove"]):
            raise OrthancError(ErrorCode.BadFileFormat)
        for name in body["Remove"]:
            modification.remove_tag(_allowed(DicomPath.parse(name).final))
    if "Replace" in body:
        if not isinstance(body["Replace"], dict):
            raise OrthancError(ErrorCode.BadFileFormat)
        for name, value in body["Replace"].items():
            if not isinstance(value, str):
                raise OrthancError(ErrorCode.BadFileFormat)
            modification.replace_tag(_allowed(DicomPath.parse(name).final), value)
    modification.replace_tag(STUDY_UID, target_uid)
    run = ModificationRun(modification, False, instances, None, keep_source=keep_source, origin=origin, kind="split")
    run.target_study_uid = target_uid
    return run


def _allowed(tag: int) -> int:
    if tag not in _SPLIT_ALLOWED:
        raise OrthancError(ErrorCode.ParameterOutOfRange,
                           "Cannot modify the following tag while splitting a study (not in the patient/study "
                           f"modules): {tag_name(tag)} ({tag >> 16:04x},{tag & 0xFFFF:04x})")
    return tag


async def build_merge(ctx: ServerContext, study: str, body: dict[str, Any], origin: Origin) -> ModificationRun:
    await _require_study(ctx, study, "merge into")
    resources = _strings(body, "Resources")
    instances: list[str] = []
    for public_id in resources:
        located = await ctx.index.find_internal(public_id)
        if located is None:
            raise OrthancError(ErrorCode.UnknownResource, f"Cannot find this resource: {public_id}")
        internal, level = located
        if level is ResourceLevel.PATIENT:
            raise OrthancError(ErrorCode.BadRequest, f"Cannot merge a patient into a study: {public_id}")
        parent = public_id if level is ResourceLevel.STUDY else await _parent_study(ctx, internal, int(level) - 1)
        if parent == study:
            raise OrthancError(ErrorCode.BadRequest, f"Cannot merge a resource into its own study: {public_id}")
        instances.extend(i for i in await _instances_of(ctx, internal) if i not in instances)
    keep_source = read_bool(body, "KeepSource", False)
    attachment = await first_child_attachment(ctx, study)
    if attachment is None:
        raise OrthancError(ErrorCode.InternalError, f"The study has no instance: {study}")
    data = await ctx.storage.read(attachment.uuid, attachment.compression != 1)
    target_tags = await ctx.executors.run_cpu(_module_values, data, ctx.default_encoding)
    modification = Modification(level=ResourceLevel.SERIES)
    for tag in sorted(_PATIENT_STUDY_TAGS):
        if tag in target_tags:
            modification.replace_tag(tag, target_tags[tag])
        elif tag != STUDY_UID:
            modification.remove_tag(tag)
    run = ModificationRun(modification, False, instances, None, keep_source=keep_source, origin=origin, kind="merge")
    run.target_study = study
    return run


def _module_values(data: bytes, encoding: str) -> dict[int, str]:
    """The string values of the patient and study modules of the target's instance."""
    ds = read_dataset(data, encoding, stop_before_pixels=True)
    values: dict[int, str] = {}
    for tag in _PATIENT_STUDY_TAGS:
        if tag in ds and ds[tag].VR in STRING_VRS:
            values[tag] = tag_string(ds, tag) or ""
    return values
