"""One configuration option (`Option`), object-valued sections, and the DicomWeb and Worklists sections."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from .kinds import ANY, BOOL, Kind, STR, STR_LIST, UINT, _choice, _freeze, _optional, _wrong, thaw
from .remotes import DICOMWEB_SERVERS, _warn_unknown_keys


@dataclass(frozen=True, slots=True)
class Option:
    """One configuration option, as in Datasette's SETTINGS table.

    `default` is the JSON value used when the option is absent; None means "unset" (the option is
    then shown commented out, with `example`, in the generated configuration.json). `section`
    lists the sub-options of an object-valued section such as "DicomWeb".
    """

    name: str
    default: Any
    kind: Kind
    help: str
    example: Any = None
    ignored: bool = False  # accepted for compatibility with Orthanc files, has no effect
    default_doc: str = ""  # how docs/configuration.md shows the default, when JSON would not do
    section: tuple[Option, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "default", _freeze(self.default, self.name))
        object.__setattr__(self, "example", _freeze(self.example, self.name))


def _section_kind(subs: tuple[Option, ...], finish: Callable[[dict[str, Any]], None] | None) -> Kind:
    """An object option whose sub-options are checked one by one; missing ones take defaults."""
    known = frozenset(sub.name for sub in subs)

    def convert(value: object, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise _wrong(path, "an object", value)
        _warn_unknown_keys(value, known, path)
        result: dict[str, Any] = {}
        for sub in subs:
            raw = value.get(sub.name, sub.default)
            if raw is None:
                raw = sub.default
            if raw is not None:
                result[sub.name] = sub.kind(raw, f"{path}.{sub.name}")
        if finish is not None:
            finish(result)
        return MappingProxyType(result)

    return Kind("an object", convert)


def _section(
    name: str, help: str, subs: tuple[Option, ...], finish: Callable[[dict[str, Any]], None] | None = None
) -> Option:
    default = {sub.name: thaw(sub.default) for sub in subs if sub.default is not None}
    return Option(name, default, _section_kind(subs, finish), help, section=subs)


def _finish_dicomweb(section: dict[str, Any]) -> None:
    section.setdefault("PublicRoot", section["Root"])


DICOMWEB_OPTIONS: Final[tuple[Option, ...]] = (
    Option("Enable", True, BOOL, "Serve the DICOMweb API (QIDO-RS, WADO-RS, STOW-RS) under Root."),
    Option("Root", "/dicom-web/", STR, "URL path of the DICOMweb API; slashes are added at both ends."),
    Option("EnableWado", True, BOOL, "Serve WADO-URI under WadoRoot."),
    Option("WadoRoot", "/wado/", STR, "URL path of WADO-URI; a trailing slash is removed."),
    Option(
        "Ssl",
        False,
        BOOL,
        "Write https:// in the URLs of answers (RetrieveURL, BulkDataURI) when the request headers "
        "do not tell the scheme.",
    ),
    Option(
        "Host",
        "",
        STR,
        "Deprecated. Host written in the URLs of answers; empty means taken from X-Forwarded-Host, "
        "then Forwarded, then Host.",
    ),
    Option(
        "PublicRoot",
        None,
        _optional(STR),
        "Path written in the URLs of answers, when a reverse proxy exposes Root elsewhere.",
        example="/dicom-web/",
        default_doc="= Root",
    ),
    Option("QidoCaseSensitive", True, BOOL, "Whether QIDO-RS matching of strings is case-sensitive."),
    Option(
        "StudiesMetadata",
        "Full",
        _choice("Full", "MainDicomTags", "Extrapolate"),
        "Source of study-level WADO-RS metadata: every file (Full), the database (MainDicomTags), "
        "or a few files (Extrapolate).",
    ),
    Option(
        "SeriesMetadata",
        "Full",
        _choice("Full", "MainDicomTags", "Extrapolate"),
        "Source of series-level WADO-RS metadata, as StudiesMetadata.",
    ),
    Option(
        "StudiesMetadataExtrapolatedTags",
        [],
        STR_LIST,
        'Tags added to study metadata in "Extrapolate" mode.',
    ),
    Option(
        "SeriesMetadataExtrapolatedTags",
        [],
        STR_LIST,
        'Tags added to series metadata in "Extrapolate" mode.',
    ),
    Option(
        "EnableMetadataCache",
        True,
        BOOL,
        "Keep the series metadata as a compressed attachment, refreshed when the series is stable.",
    ),
    Option("MetadataWorkerThreadsCount", 4, UINT, "Threads that compute WADO-RS metadata."),
    Option("WadoRsLoaderThreadsCount", 0, UINT, "Threads that read files for WADO-RS (0 = inline)."),
    Option("EnablePerformanceLogs", False, BOOL, "Log the time spent in DICOMweb requests."),
    Option(
        "CorsAllowedOrigins",
        [],
        STR_LIST,
        "orthanc_lite extension: origins (or \"*\") that browser viewers may call the DICOMweb API and WADO-URI "
        "from (CORS headers, preflight included); empty = no CORS headers, as in Orthanc.",
    ),
    Option(
        "OtherBinaryMode",
        "BulkDataURI",
        _choice("BulkDataURI", "InlineBinary", "ArrayOfValues"),
        "How OB/OD/OF/OL/OV/OW values appear in WADO-RS metadata.",
    ),
    Option(
        "Servers",
        {},
        DICOMWEB_SERVERS,
        "Remote DICOMweb servers: name -> [url, user?, password?] or an object with Url, Username, "
        "Password, HttpHeaders, CertificateFile, CertificateKeyFile, CertificateKeyPassword, Pkcs11, "
        "Timeout, HasDelete, ChunkedTransfers, HasWadoRsUniversalTransferSyntax.",
    ),
    Option(
        "ServersInDatabase",
        False,
        BOOL,
        "Keep the servers edited through the REST API in the database instead of this file.",
    ),
    Option("StowMaxInstances", None, ANY, "Obsolete.", example=10, ignored=True),
    Option("StowMaxSize", None, ANY, "Obsolete.", example=10, ignored=True),
)

WORKLISTS_OPTIONS: Final[tuple[Option, ...]] = (
    Option("Enable", False, BOOL, "Answer Modality Worklist C-FIND requests from the folder below."),
    Option("Database", "", STR, "Folder holding the worklist files (*.wl)."),
    Option(
        "FilterIssuerAet",
        False,
        BOOL,
        "Only answer worklists whose ScheduledStationAETitle matches the calling AET.",
    ),
    Option("LimitAnswers", 0, UINT, "Maximum number of worklists in one answer (0 = no limit)."),
)

_ENCODINGS: Final = (
    "Ascii", "Utf8", "Latin1", "Latin2", "Latin3", "Latin4", "Latin5", "Cyrillic", "Windows1251",
    "Arabic", "Greek", "Hebrew", "Thai", "Japanese", "Chinese", "JapaneseKanji", "Korean",
    "SimplifiedChinese",
)  # fmt: skip


def _ts_group(name: str, what: str) -> Option:
    return Option(
        name,
        None,
        _optional(BOOL),
        f"Accept (true) or refuse (false) the {what} transfer syntaxes, applied after "
        "AcceptedTransferSyntaxes. Unset: AcceptedTransferSyntaxes alone decides.",
        example=True,
    )
