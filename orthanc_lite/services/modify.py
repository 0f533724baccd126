"""Modification and anonymization of stored resources (Orthanc's ResourceModificationJob): each source instance
is read, rewritten by a dicom/modification.py Modification (one UID map for the whole run, so the new hierarchy
stays consistent), and stored through services/store.py with ModifiedFrom/AnonymizedFrom metadata.

A `ModificationRun` is stepwise (one instance per step), serializable and restartable, so jobs/ can drive it;
the sources are deleted (KeepSource false) and labels copied (KeepLabels) only in the final step, so a cancelled
or interrupted run never loses a source instance. Never imports aiohttp.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Final

import pydicom
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element

from .. import ids
from ..dicom.modification import Modification
from ..dicom.modification_request import parse_anonymization_request, parse_modify_request
from ..dicom.parse import ParsedInstance, parse_instance, summarize
from ..dicom.values import read_dataset, tag_string
from ..errors import ErrorCode, OrthancError
from ..model import AttachmentInfo, MetadataType, Origin, ResourceLevel
from . import delete as delete_service
from .context import ServerContext
from .store import StoredInstance, announce, store_parsed_blocking

logger = logging.getLogger(__name__)

ANONYMIZATION_SEQUENCE_PROPERTY: Final = 3  # Orthanc's GlobalProperty_AnonymizationSequence
_SEQUENCE_LOCK_KEY: Final = "modify.anonymization_sequence_lock"
KNOWN_TRANSFER_SYNTAXES: Final = frozenset({
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101",
    "1.2.840.10008.1.2.4.102", "1.2.840.10008.1.2.4.103", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203", "1.2.840.10008.1.2.5",
})

_PIXEL_DATA: Final = 0x7FE00010
STEP_INSTANCES: Final = 4  # instances modified at once by one step

__all__ = ["parse_modify_request", "parse_anonymization_request", "ModificationRun", "Modification"]


# --- request-level helpers ---------------------------------------------------------------------------------


def default_private_creator(ctx: ServerContext) -> str:
    return str(getattr(ctx.settings, "DefaultPrivateCreator", "") or "")


async def anonymized_patient_name(ctx: ServerContext) -> str:
    """"Anonymized<n>", n from a global sequence that survives restarts (as Orthanc's GeneratePatientName)."""
    lock = ctx.extra.setdefault(_SEQUENCE_LOCK_KEY, asyncio.Lock())
    async with lock:
        raw = await ctx.index.global_property(ANONYMIZATION_SEQUENCE_PROPERTY)
        value = (int(raw) if raw and raw.isdigit() else 0) + 1
        await ctx.index.set_global_property(ANONYMIZATION_SEQUENCE_PROPERTY, str(value))
    return f"Anonymized{value}"


async def build_anonymization(ctx: ServerContext, body: Any) -> Modification:
    modification, name_set = parse_anonymization_request(body, default_private_creator(ctx))
    if not name_set:
        modification.replace_tag(0x00100010, await anonymized_patient_name(ctx), safe_for_anonymization=True)
    return modification


def check_transcode(body: dict[str, Any]) -> str | None:
    if "Transcode" not in body:
        return None
    value = body["Transcode"]
    if not isinstance(value, str):
        raise OrthancError(ErrorCode.BadFileFormat, "The field \"Transcode\" must be a string")
    if value not in KNOWN_TRANSFER_SYNTAXES:
        raise OrthancError(ErrorCode.BadFileFormat, f"Unknown transfer syntax UID: {value}")
    return value


def read_bool(body: dict[str, Any], name: str, default: bool) -> bool:
    if name not in body:
        return default
    if not isinstance(body[name], bool):
        raise OrthancError(ErrorCode.BadFileFormat, f"The field \"{name}\" must be a Boolean")
    return bool(body[name])


async def source_instances(ctx: ServerContext, public_ids: list[str]) -> dict[str, AttachmentInfo]:
    """Every instance below each resource (any level) with its DICOM attachment, in index order (one query per
    resource); an unknown resource is a 404."""
    found: dict[str, AttachmentInfo] = {}
    for public_id in public_ids:
        located = await ctx.index.find_internal(public_id)
        if located is None:
            raise OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {public_id}")
        for instance, _series, attachment in await ctx.index.descendant_attachments(located[0]):
            found.setdefault(instance, attachment)
    return found


# --- one instance ------------------------------------------------------------------------------------------


def write_dataset(ds: Dataset) -> bytes:
    """A DICOM file (preamble + meta header) in the dataset's own transfer syntax; the meta header follows the
    dataset (media storage UIDs), as DCMTK rewrites it when it saves."""
    return write_dataset_with_offset(ds)[0]


def write_dataset_with_offset(ds: Dataset) -> tuple[bytes, int | None, str | None]:
    """write_dataset, plus where the (7fe0,0010) element starts and its VR (the PixelDataOffset and PixelDataVR
    metadata), found while writing rather than by parsing the output again."""
    meta = ds.file_meta
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = (pydicom.uid.ImplicitVRLittleEndian if ds.is_implicit_VR
                                  else pydicom.uid.ExplicitVRLittleEndian)
    meta.FileMetaInformationGroupLength = 0  # recomputed by dcmwrite
    if "FileMetaInformationVersion" not in meta:
        meta.FileMetaInformationVersion = b"\0\1"
    meta.MediaStorageSOPClassUID = pydicom.uid.UID(tag_string(ds, 0x00080016) or "")
    meta.MediaStorageSOPInstanceUID = pydicom.uid.UID(tag_string(ds, 0x00080018) or "")
    if "ImplementationClassUID" not in meta:
        meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds.preamble = getattr(ds, "preamble", None) or b"\0" * 128
    tail_tags = [t for t in ds._dict if t >= _PIXEL_DATA]
    tail = [ds.get_item(t, keep_deferred=True) for t in sorted(tail_tags)]
    for t in tail_tags:
        del ds._dict[t]
    buffer = io.BytesIO()
    try:
        pydicom.dcmwrite(buffer, ds, enforce_file_format=False)
        offset = buffer.tell()
        if tail:
            syntax = pydicom.uid.UID(str(meta.TransferSyntaxUID))
            fp = DicomBytesIO()
            fp.is_little_endian = syntax != pydicom.uid.ExplicitVRBigEndian
            fp.is_implicit_VR = syntax == pydicom.uid.ImplicitVRLittleEndian
            for elem in tail:
                write_data_element(fp, elem)
            buffer.write(fp.getvalue())
    finally:
        for elem in tail:
            ds._dict[elem.tag] = elem
    pixel = next((e for e in tail if e.tag == _PIXEL_DATA), None)
    if pixel is None:
        return buffer.getvalue(), None, None
    implicit = pydicom.uid.UID(str(meta.TransferSyntaxUID)) == pydicom.uid.ImplicitVRLittleEndian
    return buffer.getvalue(), offset, "OW" if implicit else (pixel.VR or "OW")


def transcoder() -> Callable[[bytes, str, int], bytes] | None:
    """dicom/transcode.py's transcode_file (the pixels work), when this build has it."""
    try:
        module = importlib.import_module("orthanc_lite.dicom.transcode")
    except ImportError:
        return None
    found = getattr(module, "transcode_file", None)
    return found if callable(found) else None


def lossy_quality(body: dict[str, Any]) -> int:
    """`LossyQuality` (1..100, default 90) for lossy Transcode targets."""
    value = body.get("LossyQuality", 90)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Bad lossy quality: {value}")
    return value


def transcode_or_keep(data: bytes, target: str, sop_uid: str, quality: int = 90) -> bytes | None:
    """The file in `target`, its SOPInstanceUID kept (a lossy transcoder makes a new one; Orthanc puts the
    modified one back so that references inside the hierarchy hold); None if it cannot be transcoded."""
    output = _transcoded(data, target, quality)
    if output is None:
        return None
    if (tag_string(read_dataset(output, stop_before_pixels=True), 0x00080018) or "") == sop_uid:
        return output
    ds = read_dataset(output)
    ds.SOPInstanceUID = sop_uid
    return write_dataset(ds)


def _transcoded(data: bytes, target: str, quality: int) -> bytes | None:
    convert = transcoder()
    if convert is None:
        return None
    try:
        return convert(data, target, quality)
    except (OrthancError, ValueError, NotImplementedError, RuntimeError) as exc:
        logger.warning("Cannot transcode to %s: %s", target, exc)
        return None


def hashes_of(ds: Dataset) -> tuple[str, str, str, str]:
    """The four public IDs of a dataset, as DicomInstanceHasher computes them."""
    patient = tag_string(ds, 0x00100020) or ""
    study = tag_string(ds, 0x0020000D) or ""
    series = tag_string(ds, 0x0020000E) or ""
    sop = tag_string(ds, 0x00080018) or ""
    return (ids.patient_id(patient), ids.study_id(patient, study), ids.series_id(patient, study, series),
            ids.instance_id(patient, study, series, sop))


def modified_file_sync(ctx: ServerContext, attachment: AttachmentInfo, modification: Modification,
                       lock: threading.Lock | None = None, summary: bool = True
                       ) -> tuple[bytes, tuple[str, str, str, str], ParsedInstance | None]:
    """Worker thread: read a stored instance, apply the modification, serialize. Returns the new file, the
    original IDs and the summary of the new file (what the store needs, without parsing it again)."""
    try:
        data = ctx.storage.read_sync(attachment.uuid, attachment.compression != 1)
    except OSError as exc:
        raise OrthancError(ErrorCode.InexistentFile, f"Cannot read the DICOM file {attachment.uuid}: {exc}") from None
    with ctx.executors.cpu_turn:
        ds = read_dataset(data, ctx.default_encoding)
        original = hashes_of(ds)
        if lock is not None:
            with lock:
                modification.apply(ds)
        else:
            modification.apply(ds)
        output, offset, pixel_vr = write_dataset_with_offset(ds)
        return output, original, summarize(ds, offset, pixel_vr) if summary else None


# --- a whole run (the job's state) -------------------------------------------------------------------------


@dataclass
class ModificationRun:
    """Stepwise state of a modification or anonymization over a set of instances."""

    modification: Modification
    is_anonymization: bool
    instances: list[str]
    output_level: ResourceLevel | None = None  # None: several resources (the bulk routes)
    keep_source: bool = True
    keep_labels: bool = False
    transcode: str | None = None
    origin: Origin = field(default_factory=lambda: Origin("RestApi"))
    kind: str = "modify"  # "modify" (incl. anonymize), "split" or "merge": metadata and content differ
    lossy_quality: int = 90
    permissive: bool = False  # a failing instance is counted in FailedInstancesCount instead of failing the job
    failed: list[str] = field(default_factory=list)
    target_study: str | None = None      # split/merge: the Orthanc ID of the study receiving the instances
    target_study_uid: str | None = None  # split: its StudyInstanceUID
    position: int = 0
    finished: bool = False
    single_id: str | None = None
    patient_id: str | None = None
    outputs: dict[int, set[str]] = field(default_factory=lambda: {int(level): set() for level in ResourceLevel})
    pairs: set[tuple[int, str, str]] = field(default_factory=set)  # (level, source, new) for KeepLabels
    attachments: dict[str, AttachmentInfo] = field(default_factory=dict, repr=False)  # a cache, not serialized
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def total_steps(self) -> int:
        return len(self.instances) + 1  # the trailing step (delete sources, labels)

    def progress(self) -> float:
        done = self.position + (1 if self.finished else 0)
        return min(1.0, done / self.total_steps)

    def reset(self) -> None:
        self.position = 0
        self.finished = False
        self.single_id = None
        self.patient_id = None
        self.outputs = {int(level): set() for level in ResourceLevel}
        self.pairs = set()
        self.failed = []

    async def step(self, ctx: ServerContext) -> bool:
        """Do one unit of work (a few instances at once, so that one's file and index writes overlap another's
        parsing); True when the whole run is done. Interrupted, the batch is redone: the UID map makes the same
        new instances, which the store then finds already stored."""
        if self.position < len(self.instances):
            batch = self.instances[self.position:self.position + STEP_INSTANCES]
            outcomes = await asyncio.gather(*(self._modify_one(ctx, instance) for instance in batch),
                                            return_exceptions=True)
            for instance, outcome in zip(batch, outcomes):
                if isinstance(outcome, BaseException):
                    if not self.permissive or not isinstance(outcome, OrthancError):
                        raise outcome
                    logger.warning("Cannot modify instance %s: %s", instance, outcome)
                    if instance not in self.failed:
                        self.failed.append(instance)
            self.position += len(batch)
            return False
        if not self.finished:
            await self._finish(ctx)
            self.finished = True
        return True

    async def run_all(self, ctx: ServerContext) -> dict[str, Any]:
        while not await self.step(ctx):
            pass
        return self.content()

    async def _modify_one(self, ctx: ServerContext, instance_id: str) -> None:
        attachment = self.attachments.get(instance_id)
        if attachment is None:  # a run restored after a restart: look it up
            located = await ctx.index.find_internal(instance_id, ResourceLevel.INSTANCE)
            if located is None:
                raise OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {instance_id}")
            attachment = (await ctx.index.attachments_of(located[0])).get(1)
            if attachment is None:
                raise OrthancError(ErrorCode.InexistentFile, f"No DICOM file for instance {instance_id}")
        stored = await ctx.executors.run_io(self._modify_and_store_sync, ctx, attachment)
        announce(ctx, stored[0])
        self._record(stored[1], stored[2])

    def _modify_and_store_sync(self, ctx: ServerContext, attachment: AttachmentInfo
                               ) -> tuple[StoredInstance, tuple[str, str, str, str], tuple[str, str, str, str]]:
        data, original, parsed = modified_file_sync(ctx, attachment, self.modification, self._lock)
        assert parsed is not None
        if self.transcode is not None and parsed.transfer_syntax != self.transcode:
            transcoded = _transcoded(data, self.transcode, self.lossy_quality)
            if transcoded is None:
                logger.warning("Cannot transcode instance, keeping original transfer syntax: %s", original[3])
            else:
                # Parsed once: up to the pixels when the SOPInstanceUID is kept (lossless), whole when a lossy
                # transcoder made a new one and the modified one must be put back (as transcode_or_keep).
                sop_uid = parsed.sop_uid
                with ctx.executors.cpu_turn:
                    data, parsed = transcoded, parse_instance(transcoded, ctx.default_encoding)
                if parsed.sop_uid != sop_uid:
                    ds = read_dataset(data, ctx.default_encoding)
                    ds.SOPInstanceUID = sop_uid
                    data, offset, pixel_vr = write_dataset_with_offset(ds)
                    parsed = summarize(ds, offset, pixel_vr)
        new = (parsed.patient_public_id, parsed.study_public_id, parsed.series_public_id, parsed.instance_public_id)
        mtype = int(MetadataType.AnonymizedFrom if self.is_anonymization else MetadataType.ModifiedFrom)
        extra = [(int(ResourceLevel.INSTANCE), mtype, original[3])] if self.kind == "modify" else []
        for level in (ResourceLevel.SERIES, ResourceLevel.STUDY, ResourceLevel.PATIENT):
            if original[level] != new[level] and self.kind == "modify":
                extra.append((int(level), mtype, original[level]))
        stored = store_parsed_blocking(ctx, data, parsed, self.origin, extra_metadata=tuple(extra),
                                       ingest_transcoding=self.transcode is None)
        return stored, original, new

    def _record(self, original: tuple[str, str, str, str], new: tuple[str, str, str, str]) -> None:
        if self.kind == "split" and self.target_study is None:
            self.target_study = new[ResourceLevel.STUDY]
        if self.output_level is not None and self.single_id is None:
            self.single_id = new[self.output_level]
            self.patient_id = new[ResourceLevel.PATIENT]
        for level in ResourceLevel:
            self.outputs[int(level)].add(new[level])
            if self.keep_labels:
                self.pairs.add((int(level), original[level], new[level]))

    async def _finish(self, ctx: ServerContext) -> None:
        if self.keep_labels:
            for level, source, target in sorted(self.pairs):
                if source == target:
                    continue
                for label in await ctx.index.resource_labels(source, ResourceLevel(level)) or []:
                    await ctx.index.modify_label(target, ResourceLevel(level), label, True)
        if not self.keep_source:
            created = self.outputs[int(ResourceLevel.INSTANCE)]
            for instance in self.instances:
                if instance in created or instance in self.failed:
                    continue  # modified in place (Keep of every UID with OverwriteInstances)
                if await ctx.index.find_internal(instance, ResourceLevel.INSTANCE) is not None:
                    await delete_service.delete_resource(ctx, instance, ResourceLevel.INSTANCE)

    def content(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Description": "REST API", "InstancesCount": len(self.instances),
                               "FailedInstancesCount": len(self.failed)}
        if self.kind != "modify":
            if self.target_study is not None:
                out["TargetStudy"] = self.target_study
            if self.kind == "split":
                out["TargetStudyUID"] = self.target_study_uid
            return out
        out["IsAnonymization"] = self.is_anonymization
        if self.output_level is not None:
            if self.single_id is not None:
                level = self.output_level
                out.update({"ID": self.single_id, "Path": f"/{level.plural}/{self.single_id}",
                            "PatientID": self.patient_id, "Type": level.type_name})
        else:
            resources: list[dict[str, str]] = []
            for level in (ResourceLevel.INSTANCE, ResourceLevel.SERIES, ResourceLevel.STUDY, ResourceLevel.PATIENT):
                resources.extend({"ID": pid, "Path": f"/{level.plural}/{pid}", "Type": level.type_name}
                                 for pid in sorted(self.outputs[int(level)]))
            out["Resources"] = resources
        if self.transcode is not None:
            out["Transcode"] = self.transcode
        return out

    def serialize(self) -> dict[str, Any]:
        return {
            "Modification": self.modification.serialize(), "IsAnonymization": self.is_anonymization,
            "Instances": self.instances,
            "OutputLevel": None if self.output_level is None else self.output_level.type_name,
            "KeepSource": self.keep_source, "KeepLabels": self.keep_labels, "Transcode": self.transcode,
            "LossyQuality": self.lossy_quality,
            "Origin": {"Kind": self.origin.kind, "RemoteIp": self.origin.remote_ip,
                       "HttpUsername": self.origin.http_username},
            "Kind": self.kind, "Permissive": self.permissive, "Failed": self.failed, "TargetStudy": self.target_study, "TargetStudyUID": self.target_study_uid,
            "Position": self.position, "Finished": self.finished, "SingleID": self.single_id,
            "PatientID": self.patient_id, "Outputs": {str(k): sorted(v) for k, v in self.outputs.items()},
            "Pairs": sorted(list(p) for p in self.pairs),
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> ModificationRun:
        origin = data.get("Origin") or {}
        run = cls(Modification.deserialize(data["Modification"]), bool(data["IsAnonymization"]),
                  list(data["Instances"]),
                  None if data.get("OutputLevel") is None else ResourceLevel.parse(data["OutputLevel"]),
                  bool(data["KeepSource"]), bool(data["KeepLabels"]), data.get("Transcode"),
                  Origin(origin.get("Kind", "RestApi"), remote_ip=origin.get("RemoteIp"), remote_aet="",
                         http_username=origin.get("HttpUsername")))
        run.kind = str(data.get("Kind", "modify"))
        run.permissive, run.failed = bool(data.get("Permissive", False)), list(data.get("Failed") or [])
        run.lossy_quality = int(data.get("LossyQuality", 90))
        run.target_study, run.target_study_uid = data.get("TargetStudy"), data.get("TargetStudyUID")
        run.position, run.finished = int(data["Position"]), bool(data["Finished"])
        run.single_id, run.patient_id = data.get("SingleID"), data.get("PatientID")
        for key, values in (data.get("Outputs") or {}).items():
            run.outputs[int(key)] = set(values)
        run.pairs = {(int(a), str(b), str(c)) for a, b, c in data.get("Pairs") or []}
        return run


# --- one instance, answered without storing (/instances/{id}/modify|anonymize) ------------------------------


async def modified_instance_file(ctx: ServerContext, public_id: str, modification: Modification,
                                 transcode: str | None = None, quality: int = 90) -> bytes:
    located = await ctx.index.find_internal(public_id, ResourceLevel.INSTANCE)
    if located is None:
        raise OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {public_id}")
    attachment = (await ctx.index.attachments_of(located[0])).get(1)
    if attachment is None:
        raise OrthancError(ErrorCode.InexistentFile)
    data, _original, _new = await ctx.executors.run_io(modified_file_sync, ctx, attachment, modification, None, False)
    if transcode is not None:
        current, sop_uid = await ctx.executors.run_cpu(_syntax_and_sop_uid, data)
        if current != transcode:
            transcoded = await ctx.executors.run_cpu(transcode_or_keep, data, transcode, sop_uid, quality)
            if transcoded is None:
                raise OrthancError(ErrorCode.InternalError, f"Cannot transcode to transfer syntax: {transcode}")
            data = transcoded
    return data


def _syntax_and_sop_uid(data: bytes) -> tuple[str, str]:
    """The transfer syntax (meta header) and SOPInstanceUID of a file, read up to its pixel data."""
    ds = read_dataset(data, stop_before_pixels=True)
    return str(ds.file_meta.get("TransferSyntaxUID", "")), tag_string(ds, 0x00080018) or ""


_PATIENT_MAIN_TAGS: Final = (0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x00101000)


async def check_study_patient_tags(ctx: ServerContext, study: str, modification: Modification) -> None:
    """ResourceModificationJob::PerformSanityChecks: a study modification may change the patient tags only if the
    study is (or becomes) its patient's only study, or if every patient tag matches the existing target patient."""
    replaced = [t for t in _PATIENT_MAIN_TAGS if modification.is_replaced(t)]
    if modification.level is not ResourceLevel.STUDY or not replaced:
        return
    if modification.is_replaced(0x00100020):
        target_id = _replacement_text(modification.replacements[0x00100020], 0x00100020)
    else:
        info = await ctx.index.expand_one(study, ResourceLevel.STUDY)
        if info is None:
            raise OrthancError(ErrorCode.UnknownResource, "Study not found")
        target_id = info.main_tags.get("0010,0020", "")
    patient = await ctx.index.expand_one(ids.patient_id(target_id), ResourceLevel.PATIENT)
    if patient is None:
        return
    children = list(patient.children)
    if len(children) == 0 or (len(children) == 1 and children[0] == study):
        return
    for tag in _PATIENT_MAIN_TAGS:
        key = f"{tag >> 16:04x},{tag & 0xFFFF:04x}"
        if key in patient.main_tags:
            if not modification.is_replaced(tag) or \
                    _replacement_text(modification.replacements[tag], tag) != patient.main_tags[key]:
                raise OrthancError(ErrorCode.BadRequest, "Trying to change patient tags in a study.  The Patient "
                                   "already exists and has other studies.  All the 'Replace' tags should match the "
                                   "existing patient main dicom tags.  Try using /patients/../modify instead to modify "
                                   f"the patient. Failing tag: {key}")
        elif modification.is_replaced(tag):
            raise OrthancError(ErrorCode.BadRequest, "Trying to change patient tags in a study.  The Patient already "
                               "exists and has other studies.  You are trying to replace a tag that is not defined "
                               "yet in this patient.  Try using /patients/../modify instead to modify the patient. "
                               f"Failing tag: {key}")


def _replacement_text(value: Any, tag: int) -> str:
    if not isinstance(value, str):
        raise OrthancError(ErrorCode.BadParameterType, f"Bad Parameter type for tag {tag >> 16:04x},{tag & 0xFFFF:04x}")
    return value
