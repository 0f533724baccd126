"""Value types shared by every layer: resource levels, change types, store results. No behaviour."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ResourceLevel(enum.IntEnum):
    PATIENT = 0
    STUDY = 1
    SERIES = 2
    INSTANCE = 3

    @property
    def type_name(self) -> str:
        """Orthanc's "Type" field: Patient, Study, Series, Instance."""
        return _TYPE_NAMES[self]

    @property
    def plural(self) -> str:
        """The REST path segment: patients, studies, series, instances."""
        return _PLURALS[self]

    @property
    def parent(self) -> ResourceLevel | None:
        return None if self is ResourceLevel.PATIENT else ResourceLevel(self - 1)

    @property
    def child(self) -> ResourceLevel | None:
        return None if self is ResourceLevel.INSTANCE else ResourceLevel(self + 1)

    @classmethod
    def parse(cls, text: str) -> ResourceLevel:
        """Case-insensitive; accepts singular, plural and "Image" (as /tools/find does)."""
        key = text.strip().lower()
        level = _PARSE.get(key)
        if level is None:
            raise ValueError(f"Unknown resource level: {text}")
        return level


_TYPE_NAMES = {ResourceLevel.PATIENT: "Patient", ResourceLevel.STUDY: "Study",
               ResourceLevel.SERIES: "Series", ResourceLevel.INSTANCE: "Instance"}
_PLURALS = {ResourceLevel.PATIENT: "patients", ResourceLevel.STUDY: "studies",
            ResourceLevel.SERIES: "series", ResourceLevel.INSTANCE: "instances"}
_PARSE = {
    "patient": ResourceLevel.PATIENT, "patients": ResourceLevel.PATIENT,
    "study": ResourceLevel.STUDY, "studies": ResourceLevel.STUDY,
    "series": ResourceLevel.SERIES,
    "instance": ResourceLevel.INSTANCE, "instances": ResourceLevel.INSTANCE, "image": ResourceLevel.INSTANCE,
    "images": ResourceLevel.INSTANCE,  # Orthanc's StringToResourceType accepts it (C-FIND "IMAGES")
}


class ChangeType(enum.IntEnum):
    """Orthanc's ChangeType values (persistent numbers, as in ServerEnumerations.h)."""

    CompletedSeries = 1
    NewInstance = 2
    NewPatient = 3
    NewSeries = 4
    NewStudy = 5
    AnonymizedStudy = 6
    AnonymizedSeries = 7
    ModifiedStudy = 8
    ModifiedSeries = 9
    AnonymizedPatient = 10
    ModifiedPatient = 11
    StablePatient = 12
    StableStudy = 13
    StableSeries = 14
    UpdatedAttachment = 15
    UpdatedMetadata = 16
    StableResources = 17  # never logged, kept for numbering


class MetadataType(enum.IntEnum):
    """Built-in metadata (FEATURES.md §6.3). User metadata use 1024..65535."""

    IndexInSeries = 1
    ReceptionDate = 2
    RemoteAET = 3
    ExpectedNumberOfInstances = 4
    ModifiedFrom = 5
    AnonymizedFrom = 6
    LastUpdate = 7
    Origin = 8
    TransferSyntax = 9
    SopClassUid = 10
    RemoteIP = 11
    CalledAET = 12
    HttpUsername = 13
    PixelDataOffset = 14
    MainDicomTagsSignature = 15
    MainDicomSequences = 16
    PixelDataVR = 17


class AttachmentType(enum.IntEnum):
    DICOM = 1
    DICOM_AS_JSON = 2
    DICOM_UNTIL_PIXEL_DATA = 3

ATTACHMENT_NAMES: dict[int, str] = {1: "dicom", 2: "dicom-as-json", 3: "dicom-until-pixel-data"}


class StoreStatus(enum.Enum):
    Success = "Success"
    AlreadyStored = "AlreadyStored"
    Failure = "Failure"
    FilteredOut = "FilteredOut"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an instance came from: feeds the Origin/RemoteAET/RemoteIP/CalledAET/HttpUsername metadata."""

    kind: str  # RestApi, DicomProtocol, Plugins, Lua, WebDav
    remote_ip: str | None = None
    remote_aet: str | None = None
    called_aet: str | None = None
    http_username: str | None = None


@dataclass(frozen=True, slots=True)
class StoreResult:
    status: StoreStatus
    instance_id: str | None = None
    patient_id: str | None = None
    study_id: str | None = None
    series_id: str | None = None

    def to_json(self) -> dict[str, str]:
        if self.instance_id is None:
            return {"Status": self.status.value}
        return {
            "ID": self.instance_id,
            "ParentPatient": self.patient_id or "",
            "ParentSeries": self.series_id or "",
            "ParentStudy": self.study_id or "",
            "Path": f"/instances/{self.instance_id}",
            "Status": self.status.value,
        }


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    change_type: ChangeType
    level: ResourceLevel
    public_id: str
    date: str

    def to_json(self) -> dict[str, object]:
        return {
            "ChangeType": self.change_type.name,
            "Date": self.date,
            "ID": self.public_id,
            "Path": f"/{self.level.plural}/{self.public_id}",
            "ResourceType": self.level.type_name,
            "Seq": self.seq,
        }


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    uuid: str
    content_type: int
    uncompressed_size: int
    compressed_size: int
    uncompressed_md5: str
    compressed_md5: str
    compression: int = 1  # 1 = none, 2 = zlib-with-size (Orthanc's CompressionType)
    revision: int = 0
