"""Remote modalities, Orthanc peers and DICOMweb servers: the values of named-entry options."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from .kinds import (
    ConfigError,
    JsonValue,
    ModalityRetrieveMethod,
    STR,
    UINT,
    _choice,
    _freeze,
    _mapping_of,
    _named,
    _to_aet,
    _to_bool,
    _to_str,
    _wrong,
)

logger = logging.getLogger("orthanc_lite.config")


_MANUFACTURERS: Final = (
    "Generic",
    "GenericNoWildcardInDates",
    "GenericNoUniversalWildcard",
    "Vitrea",
    "GE",
    "SiemensSyngoCT",
)
# Orthanc still reads these old names and maps them to a generic profile with a warning.
_OBSOLETE_MANUFACTURERS: Final = {
    "AgfaImpax": "GenericNoWildcardInDates",
    "SyngoVia": "GenericNoWildcardInDates",
    "EFilm2": "Generic",
    "MedInria": "Generic",
    "ClearCanvas": "Generic",
    "Dcm4Chee": "Generic",
    "StoreScp": "Generic",
}
_MODALITY_LABEL: Final = "[AET, host, port] or [AET, host, port, manufacturer] or an object"
_MODALITY_BOOLS: Final = (
    "AllowEcho",
    "AllowFind",
    "AllowFindWorklist",
    "AllowGet",
    "AllowMove",
    "AllowStore",
    "AllowNAction",
    "AllowEventReport",
    "AllowTranscoding",
    "UseDicomTls",
)
_MODALITY_KEYS: Final = frozenset(
    ("AET", "Host", "Port", "Manufacturer", "AllowStorageCommitment", "LocalAet", "Timeout")
    + ("RetrieveMethod",)
    + _MODALITY_BOOLS
)


def _to_manufacturer(value: object, path: str) -> str:
    if isinstance(value, str) and value in _OBSOLETE_MANUFACTURERS:
        replacement = _OBSOLETE_MANUFACTURERS[value]
        logger.warning(
            'Configuration option "%s": manufacturer "%s" is obsolete, using "%s"',
            path,
            value,
            replacement,
        )
        return replacement
    return str(_choice(*_MANUFACTURERS)(value, path))


def _to_remote_port(value: object, path: str) -> int:
    # Orthanc accepts the port of a modality as a number or as a string of digits.
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    raise _wrong(path, "a port number in [1, 65535] (integer or string)", value)


def _to_host(value: object, path: str) -> str:
    if isinstance(value, str) and value:
        return value
    raise _wrong(path, "a non-empty host name or IP address", value)


def _warn_unknown_keys(value: Mapping[Any, Any], known: frozenset[str], path: str) -> None:
    for key in value:
        if key not in known:
            logger.warning('Unknown configuration option "%s.%s" (ignored)', path, key)


@dataclass(frozen=True, slots=True)
class Modality:
    """A remote DICOM modality, always in Orthanc's long form (every Allow* defaults to true)."""

    AET: str
    Host: str
    Port: int
    Manufacturer: str = "Generic"
    AllowEcho: bool = True
    AllowFind: bool = True
    AllowFindWorklist: bool = True
    AllowGet: bool = True
    AllowMove: bool = True
    AllowStore: bool = True
    AllowNAction: bool = True
    AllowEventReport: bool = True
    AllowTranscoding: bool = True
    UseDicomTls: bool = False
    LocalAet: str = ""  # "" = use DicomAet when calling this modality
    Timeout: int = 0  # 0 = use DicomScuTimeout
    RetrieveMethod: ModalityRetrieveMethod = "SystemDefault"

    @property
    def AllowStorageCommitment(self) -> bool:
        """Orthanc's alias: storage commitment needs both N-ACTION and N-EVENT-REPORT."""
        return self.AllowNAction and self.AllowEventReport

    @classmethod
    def from_json(cls, value: object, path: str = "modality") -> Modality:
        """Parse the short list form or the long object form (as in DicomModalities or REST PUT)."""
        if isinstance(value, Modality):
            return value
        if isinstance(value, (list, tuple)):
            if len(value) not in (3, 4):
                raise _wrong(path, _MODALITY_LABEL, value)
            return cls(
                AET=_to_aet(value[0], f"{path}[0]"),
                Host=_to_host(value[1], f"{path}[1]"),
                Port=_to_remote_port(value[2], f"{path}[2]"),
                Manufacturer=(_to_manufacturer(value[3], f"{path}[3]") if len(value) == 4 else "Generic"),
            )
        if not isinstance(value, Mapping):
            raise _wrong(path, _MODALITY_LABEL, value)
        for required in ("AET", "Host", "Port"):
            if required not in value:
                raise ConfigError(f'Configuration option "{path}" lacks "{required}"')
        _warn_unknown_keys(value, _MODALITY_KEYS, path)
        flags: dict[str, Any] = {key: _to_bool(value[key], f"{path}.{key}") for key in _MODALITY_BOOLS if key in value}
        if "AllowStorageCommitment" in value:
            # An alias of both flags; an explicit AllowNAction / AllowEventReport wins over it.
            both = _to_bool(value["AllowStorageCommitment"], f"{path}.AllowStorageCommitment")
            flags.setdefault("AllowNAction", both)
            flags.setdefault("AllowEventReport", both)
        local_aet = value.get("LocalAet", "")
        return cls(
            AET=_to_aet(value["AET"], f"{path}.AET"),
            Host=_to_host(value["Host"], f"{path}.Host"),
            Port=_to_remote_port(value["Port"], f"{path}.Port"),
            Manufacturer=_to_manufacturer(value.get("Manufacturer", "Generic"), f"{path}.Manufacturer"),
            LocalAet=_to_aet(local_aet, f"{path}.LocalAet") if local_aet != "" else "",
            Timeout=UINT(value.get("Timeout", 0), f"{path}.Timeout"),
            RetrieveMethod=_choice("C-MOVE", "C-GET", "SystemDefault")(
                value.get("RetrieveMethod", "SystemDefault"), f"{path}.RetrieveMethod"
            ),
            **flags,
        )

    def to_json(self, force_advanced: bool = True) -> dict[str, Any] | list[Any]:
        """Orthanc's serialization: the long object, or the short list when nothing else is set."""
        defaults = Modality(self.AET, self.Host, self.Port, self.Manufacturer)
        if not force_advanced and self == defaults:
            return [self.AET, self.Host, self.Port, self.Manufacturer]
        return {
            "AET": self.AET,
            "Host": self.Host,
            "Port": self.Port,
            "Manufacturer": self.Manufacturer,
            **{key: getattr(self, key) for key in _MODALITY_BOOLS},
            "LocalAet": self.LocalAet,
            "Timeout": self.Timeout,
            "RetrieveMethod": self.RetrieveMethod,
        }


_PEER_LABEL: Final = "[url], [url, username, password] or an object with a Url"
_PEER_KEYS: Final = frozenset(
    (
        "Url",
        "Username",
        "Password",
        "HttpHeaders",
        "CertificateFile",
        "CertificateKeyFile",
        "CertificateKeyPassword",
        "Pkcs11",
        "Timeout",
    )
)
_DICOMWEB_SERVER_FLAGS: Final = ("HasDelete", "ChunkedTransfers", "HasWadoRsUniversalTransferSyntax")


def _to_url(value: object, path: str) -> str:
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        # Orthanc appends the missing trailing slash, so that "base + path" always works.
        return value if value.endswith("/") else value + "/"
    raise _wrong(path, "an http:// or https:// URL", value)


def _web_service_fields(value: object, path: str, extra_flags: tuple[str, ...] = ()) -> dict[str, Any]:
    """Fields shared by OrthancPeers and DicomWeb.Servers entries (Orthanc's WebServiceParameters)."""
    if isinstance(value, (list, tuple)):
        if len(value) not in (1, 3):
            raise _wrong(path, _PEER_LABEL, value)
        fields: dict[str, Any] = {"Url": _to_url(value[0], f"{path}[0]")}
        if len(value) == 3:
            fields["Username"] = _to_str(value[1], f"{path}[1]")
            fields["Password"] = _to_str(value[2], f"{path}[2]")
        return fields
    if not isinstance(value, Mapping):
        raise _wrong(path, _PEER_LABEL, value)
    if "Url" not in value:
        raise ConfigError(f'Configuration option "{path}" lacks "Url"')
    _warn_unknown_keys(value, _PEER_KEYS | frozenset(extra_flags), path)
    fields = {"Url": _to_url(value["Url"], f"{path}.Url")}
    for key in ("Username", "Password", "CertificateFile", "CertificateKeyFile", "CertificateKeyPassword"):
        if value.get(key) is not None:
            fields[key] = _to_str(value[key], f"{path}.{key}")
    if "HttpHeaders" in value:
        fields["HttpHeaders"] = _mapping_of(STR, "an object of strings")(value["HttpHeaders"], f"{path}.HttpHeaders")
    if "Pkcs11" in value:
        fields["Pkcs11"] = _to_bool(value["Pkcs11"], f"{path}.Pkcs11")
    if "Timeout" in value:
        fields["Timeout"] = UINT(value["Timeout"], f"{path}.Timeout")
    for key in extra_flags:
        if key in value:
            fields[key] = _to_bool(value[key], f"{path}.{key}")
    return fields


def _empty_str_map() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Peer:
    """Another Orthanc reachable over HTTP (OrthancPeers), in the long form."""

    Url: str  # always ends with "/"
    Username: str | None = None
    Password: str | None = None
    HttpHeaders: Mapping[str, str] = field(default_factory=_empty_str_map)
    CertificateFile: str | None = None
    CertificateKeyFile: str | None = None
    CertificateKeyPassword: str | None = None
    Pkcs11: bool = False
    Timeout: int = 0  # 0 = use HttpTimeout

    @classmethod
    def from_json(cls, value: object, path: str = "peer") -> Peer:
        """Parse the list form or the object form (as in OrthancPeers or REST PUT /peers/{id})."""
        if isinstance(value, Peer):
            return value
        return cls(**_web_service_fields(value, path))

    def to_json(self) -> dict[str, Any]:
        """The long object form, secrets included (REST answers must redact Password)."""
        result: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            item = getattr(self, f.name)
            if item is None:
                continue
            result[f.name] = dict(item) if isinstance(item, Mapping) else item
        return result


@dataclass(frozen=True, slots=True)
class DicomWebServer(Peer):
    """A remote DICOMweb server (DicomWeb.Servers): a Peer plus the plugin's per-server flags."""

    HasDelete: bool = False
    ChunkedTransfers: bool = True
    HasWadoRsUniversalTransferSyntax: bool = True

    @classmethod
    def from_json(cls, value: object, path: str = "server") -> DicomWebServer:
        if isinstance(value, DicomWebServer):
            return value
        return cls(**_web_service_fields(value, path, _DICOMWEB_SERVER_FLAGS))


def _to_modality(value: object, path: str) -> Modality:
    return Modality.from_json(value, path)


def _to_peer(value: object, path: str) -> Peer:
    return Peer.from_json(value, path)


def _to_dicomweb_server_json(value: object, path: str) -> JsonValue:
    # Validated here, kept as (frozen) long-form JSON inside the DicomWeb section.
    return _freeze(DicomWebServer.from_json(value, path).to_json(), path)


MODALITIES: Final = _named(_to_modality, "an object of modalities (name -> " + _MODALITY_LABEL + ")")
PEERS: Final = _named(_to_peer, "an object of peers (name -> " + _PEER_LABEL + ")")
DICOMWEB_SERVERS: Final = _named(_to_dicomweb_server_json, "an object of DICOMweb servers")
