"""Read side: expanded resources (FEATURES.md §5.2), lookups and statistics, always batched per level."""

from __future__ import annotations

from typing import Any

from ..dicom.tags import MAIN_TAGS
from ..errors import ErrorCode, OrthancError
from ..index.reads import ResourceInfo
from ..index.writes import series_status
from ..model import MetadataType, ResourceLevel
from .context import ServerContext

_PATIENT_KEYS = frozenset(f"{t >> 16:04x},{t & 0xFFFF:04x}" for t, _ in MAIN_TAGS[ResourceLevel.PATIENT])
_LEVEL_KEYS = {level: [(f"{t >> 16:04x},{t & 0xFFFF:04x}", n) for t, n in tags] for level, tags in MAIN_TAGS.items()}


def format_tags(values: dict[str, str], level: ResourceLevel, fmt: str) -> dict[str, Any]:
    """MainDicomTags of one level in the Human (default), Short or Full format, in Orthanc's key order."""
    out: dict[str, Any] = {}
    for key, name in _LEVEL_KEYS[level]:
        if key not in values:
            continue
        value = values[key]
        if fmt == "short":
            out[key] = value
        elif fmt == "full":
            out[key] = {"Name": name, "Type": "String", "Value": value}
        else:
            out[name] = value
    return out


def tag_format(query: Any) -> str:
    """?short / ?full / ?simplify are checked by presence only (FEATURES.md §0)."""
    if "short" in query:
        return "short"
    if "full" in query:
        return "full"
    return "human"


def expand_resource(ctx: ServerContext, info: ResourceInfo, fmt: str = "human") -> dict[str, Any]:
    level = info.level
    out: dict[str, Any] = {"ID": info.public_id, "Type": level.type_name, "Labels": info.labels}
    tags = info.main_tags
    if level is ResourceLevel.STUDY:
        out["MainDicomTags"] = format_tags({k: v for k, v in tags.items() if k not in _PATIENT_KEYS}, level, fmt)
        out["PatientMainDicomTags"] = format_tags(tags, ResourceLevel.PATIENT, fmt)
    else:
        out["MainDicomTags"] = format_tags(tags, level, fmt)
    meta = info.metadata
    if level is not ResourceLevel.INSTANCE:
        out["IsStable"] = ctx.stability.is_stable(info.public_id)
        out["LastUpdate"] = meta.get(MetadataType.LastUpdate, "")
    if level is ResourceLevel.PATIENT:
        out["Studies"] = info.children
        out["IsProtected"] = info.is_protected
    elif level is ResourceLevel.STUDY:
        out["ParentPatient"] = info.parent_public_id
        out["Series"] = info.children
    elif level is ResourceLevel.SERIES:
        out["ParentStudy"] = info.parent_public_id
        out["Instances"] = info.children
        expected = meta.get(MetadataType.ExpectedNumberOfInstances)
        expected_int = int(expected) if expected is not None and expected.isdigit() else None
        out["ExpectedNumberOfInstances"] = expected_int
        out["Status"] = series_status(expected_int, info.child_indexes)
    else:
        out["ParentSeries"] = info.parent_public_id
        att = info.dicom_attachment
        out["FileSize"] = att.uncompressed_size if att else 0
        out["FileUuid"] = att.uuid if att else ""
        index = meta.get(MetadataType.IndexInSeries)
        out["IndexInSeries"] = int(index) if index is not None and index.lstrip("-").isdigit() else None
    if MetadataType.AnonymizedFrom in meta:
        out["AnonymizedFrom"] = meta[MetadataType.AnonymizedFrom]
    if MetadataType.ModifiedFrom in meta:
        out["ModifiedFrom"] = meta[MetadataType.ModifiedFrom]
    return out


async def require(ctx: ServerContext, public_id: str, level: ResourceLevel | None = None) -> tuple[int, ResourceLevel]:
    found = await ctx.index.find_internal(public_id, level)
    if found is None:
        raise OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {public_id}")
    return found


async def get_expanded(ctx: ServerContext, public_id: str, level: ResourceLevel, fmt: str = "human") -> dict[str, Any]:
    info = await ctx.index.expand_one(public_id, level)
    if info is None:
        raise OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {public_id}")
    return expand_resource(ctx, info, fmt)


def size_mb(size: int) -> int:
    return size // (1024 * 1024)


async def statistics(ctx: ServerContext) -> dict[str, Any]:
    s = await ctx.index.statistics()
    return {
        "CountInstances": s["CountInstances"],
        "CountPatients": s["CountPatients"],
        "CountSeries": s["CountSeries"],
        "CountStudies": s["CountStudies"],
        "TotalDiskSize": str(s["TotalDiskSize"]),
        "TotalDiskSizeMB": size_mb(s["TotalDiskSize"]),
        "TotalUncompressedSize": str(s["TotalUncompressedSize"]),
        "TotalUncompressedSizeMB": size_mb(s["TotalUncompressedSize"]),
    }


async def resource_statistics(ctx: ServerContext, public_id: str, level: ResourceLevel) -> dict[str, Any]:
    internal, _ = await require(ctx, public_id, level)
    s = await ctx.index.resource_statistics(internal)
    out: dict[str, Any] = {
        "DiskSize": str(s["disk"]), "DiskSizeMB": size_mb(s["disk"]),
        "UncompressedSize": str(s["uncompressed"]), "UncompressedSizeMB": size_mb(s["uncompressed"]),
        "DicomDiskSize": str(s["dicom_disk"]), "DicomDiskSizeMB": size_mb(s["dicom_disk"]),
        "DicomUncompressedSize": str(s["dicom_uncompressed"]), "DicomUncompressedSizeMB": size_mb(s["dicom_uncompressed"]),
    }
    names = {1: "CountStudies", 2: "CountSeries", 3: "CountInstances"}
    for lvl in range(int(level) + 1, 4):
        out[names[lvl]] = s.get(f"count{lvl}", 0)
    return out
