"""Configuration: Orthanc's configuration.json files -> one immutable `Settings`.

Owns the table of every option (`OPTIONS`: name, default, type check, help), the loader (JSON with
comments, `${ENV}` substitution, directories of files, defaults, validation -> `ConfigError`) and the
renderers of the documented `configuration.json` and `docs/configuration.md`, both generated from
`OPTIONS`. Imports nothing from the rest of orthanc_lite; nothing else reads the JSON or os.environ.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

logger = logging.getLogger(__name__)

__all__ = [
    "DICOMWEB_OPTIONS",
    "OPTIONS",
    "OPTION_GROUPS",
    "WORKLISTS_OPTIONS",
    "ConfigError",
    "DicomWebServer",
    "JsonValue",
    "Kind",
    "Modality",
    "Option",
    "OverwriteMode",
    "PathArg",
    "Peer",
    "Settings",
    "load",
    "render_documented_configuration",
    "render_markdown_documentation",
    "thaw",
]

# A JSON value once frozen: objects become read-only mappings and arrays become tuples, so that
# a Settings shared by every module (and by threads) cannot be changed behind anyone's back.
JsonValue: TypeAlias = None | bool | int | float | str | tuple["JsonValue", ...] | Mapping[str, "JsonValue"]
PathArg: TypeAlias = str | os.PathLike[str]
OverwriteMode: TypeAlias = Literal["Never", "Always", "IfChanged"]
StorageMode: TypeAlias = Literal["Recycle", "Reject"]
RetrieveMethod: TypeAlias = Literal["C-MOVE", "C-GET"]
ModalityRetrieveMethod: TypeAlias = Literal["C-MOVE", "C-GET", "SystemDefault"]
StorageAccess: TypeAlias = Literal["Always", "Answers", "Never"]
TranscoderOrder: TypeAlias = Literal["After", "Before", "Disabled"]


# Credentials published in Orthanc's samples and test configurations: a server whose registered users
# include one of them is reported as insecure by "/system" (Orthanc 1.13, CheckHttpServerSecurity.py).
SAMPLE_CREDENTIALS: Final = frozenset({("orthanc", "orthanc"), ("alice", "orthanctest")})


class ConfigError(Exception):
    """The configuration cannot be used; the message names the option, file and value at fault."""


# --------------------------------------------------------------------------------------------
# Value checks ("kinds"). Each one takes the raw JSON value and the option's dotted path (used in
# messages) and returns the normalized value, or raises ConfigError.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kind:
    """How an option's value is checked and normalized; `label` names the expected type."""

    label: str
    convert: Callable[[object, str], Any]

    def __call__(self, value: object, path: str) -> Any:
        return self.convert(value, path)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _describe(value: object) -> str:
    try:
        text = json.dumps(thaw(value), ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _wrong(path: str, expected: str, value: object) -> ConfigError:
    return ConfigError(
        f'Configuration option "{path}" must be {expected}, got {_describe(value)} ({_json_type(value)})'
    )


def _to_bool(value: object, path: str) -> bool:
    # Orthanc accepts only JSON booleans here: "true" (a string) is an error there too.
    if isinstance(value, bool):
        return value
    raise _wrong(path, BOOL.label, value)


def _int_kind(lo: int | None = None, hi: int | None = None) -> Kind:
    if lo is not None and hi is not None:
        label = f"an integer in [{lo}, {hi}]"
    elif lo is not None:
        label = f"an integer >= {lo}"
    else:
        label = "an integer"

    def convert(value: object, path: str) -> int:
        # bool is an int subclass in Python, but not in JSON; 5.0 is a float in JSON too.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(path, label, value)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise _wrong(path, label, value)
        return value

    return Kind(label, convert)


def _to_str(value: object, path: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):  # only from Settings.replace(), e.g. tmp_path in tests
        text = os.fspath(value)
        if isinstance(text, str):
            return text
    raise _wrong(path, STR.label, value)


def _to_str_list(value: object, path: str) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise _wrong(path, STR_LIST.label, value)


def _choice(*choices: str) -> Kind:
    label = "one of " + ", ".join(f'"{c}"' for c in choices)

    def convert(value: object, path: str) -> str:
        if isinstance(value, str) and value in choices:  # case-sensitive, as in Orthanc
            return value
        raise _wrong(path, label, value)

    return Kind(label, convert)


def _optional(kind: Kind) -> Kind:
    """The option may be absent or null ("unset"), which is not the same as any value."""

    def convert(value: object, path: str) -> Any:
        return None if value is None else kind(value, path)

    return Kind(kind.label, convert)


def _freeze(value: object, path: str) -> JsonValue:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item, f"{path}[{i}]") for i, item in enumerate(value))
    if isinstance(value, Mapping):
        frozen: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _wrong(path, "an object with string keys", value)
            frozen[key] = _freeze(item, f"{path}.{key}")
        return MappingProxyType(frozen)
    raise _wrong(path, "a JSON value", value)


def thaw(value: object) -> Any:
    """A frozen value (mappings, tuples, Modality, Peer) as plain JSON-serializable dicts/lists."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(item) for item in value]
    if isinstance(value, (Modality, Peer)):
        return value.to_json()
    return value


def _to_object(value: object, path: str) -> Mapping[str, JsonValue]:
    if not isinstance(value, Mapping):
        raise _wrong(path, OBJECT.label, value)
    frozen = _freeze(value, path)
    assert isinstance(frozen, Mapping)
    return frozen


def _mapping_of(kind: Kind, label: str) -> Kind:
    def convert(value: object, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise _wrong(path, label, value)
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                raise _wrong(path, label, value)
            result[key] = kind(item, f"{path}.{key}")
        return MappingProxyType(result)

    return Kind(label, convert)


_AET_LABEL: Final = "an AET (a string of 1 to 16 characters, without backslash)"


def _to_aet(value: object, path: str) -> str:
    # DICOM PS3.5 AE VR: at most 16 characters of the default repertoire, no backslash.
    if (
        isinstance(value, str)
        and 1 <= len(value) <= 16
        and value.strip()
        and all(" " <= ch <= "~" and ch != "\\" for ch in value)
    ):
        return value
    raise _wrong(path, _AET_LABEL, value)


def _to_overwrite(value: object, path: str) -> bool | str:
    # Orthanc <= 1.12 takes a boolean; 1.13 also takes "Never", "Always" or "IfChanged".
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("Never", "Always", "IfChanged"):
        return value
    raise _wrong(path, 'true, false, "Never", "Always" or "IfChanged"', value)


_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_-]+$")


def _named(parse: Callable[[object, str], Any], label: str) -> Kind:
    """An object of named entries (modalities, peers, DICOMweb servers), names checked as Orthanc."""

    def convert(value: object, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise _wrong(path, label, value)
        result: dict[str, Any] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise ConfigError(
                    f'Configuration option "{path}": bad name {_describe(name)}; '
                    'only letters, digits, "_" and "-" are allowed'
                )
            result[name] = parse(item, f"{path}.{name}")
        return MappingProxyType(result)

    return Kind(label, convert)


def _user_numbers(accept_mime: bool) -> Kind:
    """UserMetadata / UserContentType: name -> unique number in [1024, 65535] (+ MIME type)."""
    number_kind = _int_kind(1024, 65535)
    label = (
        "an object mapping names to an integer in [1024, 65535] or to [integer, MIME type]"
        if accept_mime
        else "an object mapping names to an integer in [1024, 65535]"
    )

    def convert(value: object, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise _wrong(path, label, value)
        result: dict[str, Any] = {}
        seen: dict[int, str] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not name:
                raise _wrong(path, label, value)
            where = f"{path}.{name}"
            mime = ""
            if accept_mime and isinstance(item, (list, tuple)):
                if len(item) != 2 or not isinstance(item[1], str):
                    raise _wrong(where, "an integer or [integer, MIME type]", item)
                item, mime = item[0], item[1]
            number = number_kind(item, where)
            if number in seen:
                raise ConfigError(
                    f'Configuration option "{path}": "{seen[number]}" and "{name}" '
                    f"both use the number {number}"
                )
            seen[number] = name
            result[name] = (number, mime) if accept_mime else number
        return MappingProxyType(result)

    return Kind(label, convert)


_TAG_KEY_RE: Final = re.compile(r"^[0-9a-fA-F]{4},[0-9a-fA-F]{2,4}$")
_DICTIONARY_LABEL: Final = 'an object "gggg,eeee": [VR, name, min?, max?, private creator?]'


def _to_dictionary(value: object, path: str) -> Mapping[str, tuple[JsonValue, ...]]:
    if not isinstance(value, Mapping):
        raise _wrong(path, _DICTIONARY_LABEL, value)
    result: dict[str, tuple[JsonValue, ...]] = {}
    for key, entry in value.items():
        where = f"{path}.{key}"
        if not isinstance(key, str) or not _TAG_KEY_RE.match(key):
            raise ConfigError(f'Configuration option "{path}": bad tag {_describe(key)}')
        ok = (
            isinstance(entry, (list, tuple))
            and 2 <= len(entry) <= 5
            and all(isinstance(item, str) for item in entry[:2])
            and all(_is_uint(item) for item in entry[2:4])
            and all(isinstance(item, str) for item in entry[4:])
        )
        if not ok:
            raise _wrong(where, "[VR, name, min?, max?, private creator?]", entry)
        frozen = _freeze(entry, where)
        assert isinstance(frozen, tuple)
        result[key] = frozen
    return MappingProxyType(result)


def _is_uint(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_LEVELS: Final = ("Patient", "Study", "Series", "Instance")


def _to_extra_main_dicom_tags(value: object, path: str) -> Mapping[str, tuple[str, ...]]:
    label = 'an object {"Patient"|"Study"|"Series"|"Instance": [tag, ...]}'
    if not isinstance(value, Mapping) or any(level not in _LEVELS for level in value):
        raise _wrong(path, label, value)
    return MappingProxyType({level: _to_str_list(tags, f"{path}.{level}") for level, tags in value.items()})


BOOL: Final = Kind("a boolean (true or false)", _to_bool)
INT: Final = _int_kind()
UINT: Final = _int_kind(0)
PORT: Final = _int_kind(0, 65535)  # 0 = any free port (tests bind port 0)
STR: Final = Kind("a string", _to_str)
STR_LIST: Final = Kind("an array of strings", _to_str_list)
OBJECT: Final = Kind("an object", _to_object)
ANY: Final = Kind("any JSON value", _freeze)
AET: Final = Kind(_AET_LABEL, _to_aet)


# --------------------------------------------------------------------------------------------
# Remote modalities, Orthanc peers, DICOMweb servers (values of named-entry options)
# --------------------------------------------------------------------------------------------

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
        flags: dict[str, Any] = {
            key: _to_bool(value[key], f"{path}.{key}") for key in _MODALITY_BOOLS if key in value
        }
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
        fields["HttpHeaders"] = _mapping_of(STR, "an object of strings")(
            value["HttpHeaders"], f"{path}.HttpHeaders"
        )
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


# --------------------------------------------------------------------------------------------
# The options table
# --------------------------------------------------------------------------------------------


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


OPTION_GROUPS: Final[tuple[tuple[str, tuple[Option, ...]], ...]] = (
    (
        "General",
        (
            Option("Name", "MyOrthanc", STR, 'Name of this server, shown by "/system" and the web UI.'),
            Option(
                "StorageDirectory",
                "OrthancStorage",
                STR,
                "Folder of the stored files (<dir>/<2 hex>/<2 hex>/<uuid>). Relative paths are "
                'relative to the working directory; on Windows write "/" or "\\\\".',
            ),
            Option(
                "IndexDirectory",
                None,
                _optional(STR),
                'Folder of the SQLite index ("index" file). Unset: StorageDirectory.',
                example="OrthancStorage",
                default_doc="= StorageDirectory",
            ),
            Option(
                "TemporaryDirectory",
                None,
                _optional(STR),
                "Folder for large temporary files. Unset: the system's temporary folder.",
                example="/tmp/Orthanc/",
                ignored=True,
            ),
            Option(
                "StorageCompression",
                False,
                BOOL,
                "Compress the stored files (zlib), transparently for clients.",
            ),
            Option(
                "MaximumStorageSize",
                0,
                UINT,
                "Maximum size of the storage in MB; 0 = no limit. See MaximumStorageMode.",
            ),
            Option(
                "MaximumPatientCount",
                0,
                UINT,
                "Maximum number of patients stored; 0 = no limit. See MaximumStorageMode.",
            ),
            Option(
                "MaximumStorageMode",
                "Recycle",
                _choice("Recycle", "Reject"),
                "When a limit above is reached: delete the oldest unprotected patient (Recycle), or "
                "refuse new instances (Reject: HTTP 507, C-STORE status 0xA700).",
            ),
            Option(
                "MaximumStorageCacheSize",
                128,
                UINT,
                "Size in MB of the in-memory cache of recently used files; 0 = no cache.",
            ),
            Option(
                "StoreDicom",
                True,
                BOOL,
                "false = index-only mode: the main DICOM tags are indexed, the files are not kept.",
            ),
            Option(
                "SyncStorageArea",
                True,
                BOOL,
                "Call fsync() after each write to the storage, so that a stored instance survives a "
                "crash of the machine (slower).",
            ),
            Option(
                "StoreMD5ForAttachments",
                True,
                BOOL,
                "Compute and keep the MD5 of each stored file, to detect disk corruption.",
            ),
            Option(
                "OverwriteInstances",
                False,
                Kind('true, false, "Never", "Always" or "IfChanged"', _to_overwrite),
                "What to do with an instance whose SOPInstanceUID is already stored: keep the old "
                'one (false or "Never"), replace it (true or "Always"), or replace it only if the '
                'file differs ("IfChanged", Orthanc 1.13).',
            ),
            Option(
                "StableAge",
                60,
                UINT,
                "Seconds without a new instance after which a patient, study or series is stable.",
            ),
            Option(
                "ConcurrentJobs",
                2,
                UINT,
                "Number of jobs running at the same time; 0 = the number of CPU cores.",
            ),
            Option(
                "JobsHistorySize",
                10,
                UINT,
                "Number of finished jobs kept in memory. 0 breaks synchronous REST calls that run as jobs.",
            ),
            Option("SaveJobs", True, BOOL, "Save the jobs in the database and reload them at startup."),
            Option(
                "JobsEngineThreadsCount",
                {"ResourceModification": 1},
                _mapping_of(UINT, "an object of integers >= 0"),
                "Threads used inside one job, per job type (ResourceModification: /modify, "
                "/anonymize); 0 = the number of CPU cores.",
            ),
            Option(
                "MediaArchiveSize",
                1,
                UINT,
                "Number of archives (ZIP, DICOMDIR media) created by asynchronous jobs kept for download.",
            ),
            Option(
                "SynchronousZipStream",
                True,
                BOOL,
                "Stream synchronous ZIP archives as they are built instead of writing a temporary "
                "file first.",
            ),
            Option("ZipUseUtf8", False, BOOL, "Mark the file names inside ZIP archives as UTF-8."),
            Option(
                "LogExportedResources",
                False,
                BOOL,
                'Record the resources sent to modalities and peers, as listed by "/exports".',
            ),
            Option(
                "CheckRevisions",
                False,
                BOOL,
                "Protect metadata and attachments with revisions (ETag, If-Match, If-None-Match).",
            ),
            Option(
                "ReadOnly",
                False,
                BOOL,
                "Read-only mode: the REST routes that write are not available.",
            ),
            Option(
                "PatientLevelEnabled",
                True,
                BOOL,
                'false removes every "/patients" route and the patient-level consistency checks.',
            ),
            Option(
                "ExtraMainDicomTags",
                None,
                _optional(
                    Kind(
                        'an object {"Patient"|"Study"|"Series"|"Instance": [tag, ...]}',
                        _to_extra_main_dicom_tags,
                    )
                ),
                "Tags stored in the index in addition to the main DICOM tags, per level.",
                example={"Instance": ["Rows", "Columns"], "Series": [], "Study": [], "Patient": []},
            ),
            Option(
                "UserMetadata",
                {},
                _user_numbers(accept_mime=False),
                "Names of user-defined metadata: name -> number in [1024, 65535], each number used once.",
            ),
            Option(
                "UserContentType",
                {},
                _user_numbers(accept_mime=True),
                "Names of user-defined attachment types: name -> number in [1024, 65535], or "
                "[number, MIME type].",
            ),
            Option(
                "StorageAccessOnFind",
                "Always",
                _choice("Always", "Answers", "Never"),
                "Whether C-FIND, /tools/find and QIDO-RS may read files: to filter and answer "
                "(Always), only to answer (Answers), or never (Never, the database only).",
            ),
            Option(
                "LimitFindResults",
                0,
                UINT,
                "Maximum number of patients, studies or series in one C-FIND or /tools/find "
                "answer; 0 = no limit.",
            ),
            Option(
                "LimitFindInstances",
                0,
                UINT,
                "Maximum number of instances in one C-FIND or /tools/find answer; 0 = no limit.",
            ),
            Option(
                "QueryRetrieveSize",
                100,
                UINT,
                'Number of query/retrieve requests ("/queries") kept; the least recently used go first.',
            ),
            Option(
                "StorageCommitmentReportsSize",
                100,
                UINT,
                "Number of storage commitment reports received from modalities kept in memory.",
            ),
            Option("MetricsEnabled", True, BOOL, 'Collect metrics for "/tools/metrics-prometheus".'),
            Option("ExecuteLuaEnabled", False, BOOL, 'Enable "/tools/execute-script".'),
            Option(
                "RestApiWriteToFileSystemEnabled",
                False,
                BOOL,
                'Let the REST API write files on the server ("/instances/{id}/export").',
            ),
            Option(
                "DeidentifyLogs",
                True,
                BOOL,
                "Remove patient data from the logged C-FIND, C-GET and C-MOVE queries.",
            ),
            Option(
                "DeidentifyLogsDicomVersion",
                "2023b",
                _choice("2008", "2017c", "2021b", "2023b"),
                "Edition of the DICOM de-identification profile used by DeidentifyLogs.",
            ),
        ),
    ),
    (
        "HTTP server",
        (
            Option(
                "HttpServerEnabled",
                True,
                BOOL,
                "Run the HTTP server (REST API, DICOMweb, web UI); false = DICOM only.",
            ),
            Option("HttpPort", 8042, PORT, "TCP port of the HTTP server."),
            Option(
                "HttpBindAddresses",
                None,
                _optional(STR_LIST),
                "IP addresses the HTTP server listens on. Unset: every interface.",
                example=["127.0.0.1"],
                default_doc="every interface",
            ),
            Option("OrthancExplorerEnabled", True, BOOL, 'Serve the web user interface under "/app/".'),
            Option(
                "HttpDescribeErrors",
                True,
                BOOL,
                "Put a JSON description of the error in the body of failed REST calls.",
            ),
            Option(
                "HttpCompressionEnabled",
                False,
                BOOL,
                "Compress HTTP answers (gzip, deflate) for clients that accept it.",
            ),
            Option("HttpThreadsCount", 50, UINT, "Number of HTTP requests served at the same time."),
            Option("KeepAlive", True, BOOL, "Keep HTTP connections open between requests."),
            Option("KeepAliveTimeout", 1, UINT, "Seconds an idle HTTP connection is kept open."),
            Option("TcpNoDelay", True, BOOL, "Disable Nagle's algorithm on HTTP connections."),
            Option(
                "HttpRequestTimeout",
                30,
                UINT,
                "Seconds allowed to receive a request or send an answer on an HTTP connection.",
            ),
            Option(
                "MaximumRequestBodySizeMB",
                8192,
                UINT,
                "Maximum size in MB of an HTTP request body (larger ones get 413); 0 = no limit.",
            ),
            Option(
                "MaximumFileSizeInArchiveMB",
                4096,
                UINT,
                "Maximum size in MB of one uncompressed file taken from an uploaded ZIP or gzip "
                "archive (guards against archive bombs); 0 = no limit.",
            ),
            Option(
                "WebDavEnabled", True, BOOL, 'Publish the stored resources as a WebDAV share ("/webdav/").'
            ),
            Option("WebDavDeleteAllowed", False, BOOL, "Allow deleting through the WebDAV share."),
            Option("WebDavUploadAllowed", True, BOOL, "Allow uploading through the WebDAV share."),
        ),
    ),
    (
        "HTTP security",
        (
            Option(
                "RemoteAccessAllowed",
                False,
                BOOL,
                "Accept HTTP clients other than localhost (the others get 401).",
            ),
            Option(
                "AuthenticationEnabled",
                None,
                _optional(BOOL),
                "Require HTTP Basic authentication against RegisteredUsers. Unset: enabled exactly "
                "when RemoteAccessAllowed is true.",
                example=False,
                default_doc="= RemoteAccessAllowed",
            ),
            Option(
                "RegisteredUsers",
                {},
                _mapping_of(STR, "an object of user name -> password"),
                "Users of HTTP Basic authentication: user name -> password, in plain text.",
            ),
            Option("SslEnabled", False, BOOL, "Serve HTTPS instead of HTTP, on the same port."),
            Option(
                "SslCertificate",
                "certificate.pem",
                STR,
                "PEM file holding both the certificate and the private key of the HTTPS server.",
            ),
            Option(
                "SslMinimumProtocolVersion",
                4,
                _int_kind(0, 5),
                "Oldest protocol accepted by the HTTPS server: 0 = SSL2, 1 = SSL3, 2 = TLS 1.0, "
                "3 = TLS 1.1, 4 = TLS 1.2, 5 = TLS 1.3.",
            ),
            Option(
                "SslCiphersAccepted",
                None,
                _optional(STR_LIST),
                "OpenSSL names of the ciphers the HTTPS server accepts. Unset: the library's defaults.",
                example=["AES128-GCM-SHA256"],
            ),
            Option(
                "SslVerifyPeers",
                False,
                BOOL,
                "Require HTTPS clients to present a certificate found in SslTrustedClientCertificates.",
            ),
            Option(
                "SslTrustedClientCertificates",
                "trustedClientCertificates.pem",
                STR,
                "PEM file of the client certificates trusted when SslVerifyPeers is true.",
            ),
        ),
    ),
    (
        "DICOM server (SCP)",
        (
            Option(
                "DicomServerEnabled",
                True,
                BOOL,
                "Run the DICOM server (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET, storage "
                "commitment); false = REST only.",
            ),
            Option("DicomAet", "ORTHANC", AET, "AET of this server (at most 16 characters)."),
            Option("DicomPort", 4242, PORT, "TCP port of the DICOM server."),
            Option(
                "DicomCheckCalledAet",
                False,
                BOOL,
                "Refuse associations whose called AET is not DicomAet.",
            ),
            Option(
                "DicomCheckModalityHost",
                False,
                BOOL,
                "Also require the IP address of a calling modality to match its Host in DicomModalities.",
            ),
            Option(
                "StrictAetComparison",
                False,
                BOOL,
                "Compare AETs case-sensitively (by default, case is ignored).",
            ),
            Option(
                "DicomAlwaysAllowEcho",
                True,
                BOOL,
                "Answer C-ECHO from any AET, even one not in DicomModalities.",
            ),
            Option(
                "DicomAlwaysAllowStore",
                True,
                BOOL,
                "Accept C-STORE from any AET, even one not in DicomModalities.",
            ),
            Option(
                "DicomAlwaysAllowFind",
                False,
                BOOL,
                "Answer C-FIND (patients to instances) from any AET. A security risk.",
            ),
            Option(
                "DicomAlwaysAllowFindWorklist",
                False,
                BOOL,
                "Answer worklist C-FIND from any AET. A security risk.",
            ),
            Option("DicomAlwaysAllowGet", False, BOOL, "Answer C-GET from any AET. A security risk."),
            Option("DicomAlwaysAllowMove", False, BOOL, "Answer C-MOVE from any AET. A security risk."),
            Option(
                "DicomScpTimeout",
                30,
                UINT,
                "Seconds without a DIMSE command after which the server closes an association; 0 = never.",
            ),
            Option(
                "DicomThreadsCount",
                4,
                UINT,
                "Number of DICOM operations processed at the same time by the server.",
            ),
            Option(
                "MaximumPduLength",
                16384,
                _int_kind(4096, 131072),
                "Maximum PDU length in bytes, for the server and the client, in [4096, 131072].",
            ),
            Option(
                "UnknownSopClassAccepted",
                False,
                BOOL,
                "Accept C-STORE of SOP classes that are not known storage classes.",
            ),
            Option(
                "AcceptedSopClasses",
                None,
                _optional(STR_LIST),
                'SOP class UIDs accepted by C-STORE ("*" and "?" wildcards). Unset: every known '
                "storage class.",
                example=["1.2.840.10008.5.1.4.1.1.*"],
                default_doc="every storage class",
            ),
            Option(
                "RejectedSopClasses",
                [],
                STR_LIST,
                "SOP class UIDs refused by C-STORE, applied after AcceptedSopClasses (wildcards).",
            ),
            Option(
                "AcceptedTransferSyntaxes",
                ["1.2.840.10008.1.*"],
                STR_LIST,
                'Transfer syntax UIDs accepted by the server ("*" and "?" wildcards).',
            ),
            _ts_group("DeflatedTransferSyntaxAccepted", "deflated"),
            _ts_group("JpegTransferSyntaxAccepted", "JPEG"),
            _ts_group("Jpeg2000TransferSyntaxAccepted", "JPEG 2000"),
            _ts_group("JpegLosslessTransferSyntaxAccepted", "JPEG lossless"),
            _ts_group("JpipTransferSyntaxAccepted", "JPIP"),
            _ts_group("Mpeg2TransferSyntaxAccepted", "MPEG-2"),
            _ts_group("Mpeg4TransferSyntaxAccepted", "MPEG-4"),
            _ts_group("H265TransferSyntaxAccepted", "H.265"),
            _ts_group("RleTransferSyntaxAccepted", "RLE"),
            Option(
                "DefaultEncoding",
                "Latin1",
                _choice(*_ENCODINGS),
                "Character set assumed for files without SpecificCharacterSet, and used in C-FIND "
                "and QIDO-RS answers.",
            ),
            Option(
                "CaseSensitivePN",
                False,
                BOOL,
                "Match person names (PN) case-sensitively in C-FIND, as the DICOM standard says.",
            ),
            Option(
                "SynchronousCMove",
                True,
                BOOL,
                "Run incoming C-MOVE inside the association; false = as a background job.",
            ),
        ),
    ),
    (
        "DICOM TLS",
        (
            Option("DicomTlsEnabled", False, BOOL, "Use DICOM TLS for the DICOM server."),
            Option(
                "DicomTlsCertificate",
                None,
                _optional(STR),
                "PEM certificate of this server, for DICOM TLS as server and as client.",
                example="orthanc.crt",
            ),
            Option(
                "DicomTlsPrivateKey",
                None,
                _optional(STR),
                "PEM private key matching DicomTlsCertificate.",
                example="orthanc.key",
            ),
            Option(
                "DicomTlsTrustedCertificates",
                None,
                _optional(STR),
                "PEM file of the certificates of the remote modalities that are trusted.",
                example="trusted.crt",
            ),
            Option(
                "DicomTlsRemoteCertificateRequired",
                True,
                BOOL,
                "Refuse DICOM TLS peers that present no certificate.",
            ),
            Option(
                "DicomTlsMinimumProtocolVersion",
                0,
                _int_kind(0, 5),
                "Oldest TLS version accepted: 0 = the BCP 195 profile, 1 = SSL3, 2 = TLS 1.0, "
                "3 = TLS 1.1, 4 = TLS 1.2, 5 = TLS 1.3.",
            ),
            Option(
                "DicomTlsCiphersAccepted",
                None,
                _optional(STR_LIST),
                "OpenSSL names of the ciphers accepted for DICOM TLS. Unset: the BCP 195 ciphers.",
                example=["ECDHE-RSA-AES128-GCM-SHA256"],
            ),
        ),
    ),
    (
        "DICOM network: modalities and client (SCU)",
        (
            Option(
                "DicomModalities",
                {},
                MODALITIES,
                "Known DICOM modalities: name -> [AET, Host, Port] or [AET, Host, Port, "
                "Manufacturer], or an object with AET, Host, Port, Manufacturer, AllowEcho, "
                "AllowFind, AllowFindWorklist, AllowGet, AllowMove, AllowStore, "
                "AllowStorageCommitment, AllowTranscoding, UseDicomTls, LocalAet, Timeout, "
                'RetrieveMethod. Names use letters, digits, "_" and "-".',
            ),
            Option(
                "DicomModalitiesInDatabase",
                False,
                BOOL,
                "Keep the modalities in the database (edited through the REST API); "
                "DicomModalities is then ignored.",
            ),
            Option(
                "DicomScuTimeout",
                10,
                UINT,
                "Seconds the client waits for a remote modality; 0 = no limit. A modality's "
                "Timeout overrides it.",
            ),
            Option(
                "DicomAssociationCloseDelay",
                5,
                UINT,
                "Seconds an association opened by a Lua script is kept open while idle.",
            ),
            Option(
                "DicomEchoChecksFind",
                False,
                BOOL,
                "After a C-ECHO to a modality, also check that it answers a C-FIND.",
            ),
            Option(
                "DicomDefaultRetrieveMethod",
                "C-MOVE",
                _choice("C-MOVE", "C-GET"),
                'How "/queries/.../retrieve" fetches from a modality whose RetrieveMethod is SystemDefault.',
            ),
            Option(
                "DicomScuPreferredTransferSyntax",
                "1.2.840.10008.1.2.1",
                STR,
                "Transfer syntax to convert to when a remote modality refuses an instance's own "
                "transfer syntax in C-STORE.",
            ),
            Option(
                "OrthancPeers",
                {},
                PEERS,
                "Known Orthanc peers: name -> [Url] or [Url, Username, Password], or an object "
                "with Url, Username, Password, HttpHeaders, CertificateFile, CertificateKeyFile, "
                "CertificateKeyPassword, Pkcs11, Timeout.",
            ),
            Option(
                "OrthancPeersInDatabase",
                False,
                BOOL,
                "Keep the peers in the database (edited through the REST API); OrthancPeers is then ignored.",
            ),
        ),
    ),
    (
        "Outgoing HTTP (peers, DICOMweb client)",
        (
            Option("HttpTimeout", 60, UINT, "Seconds allowed for an outgoing HTTP request; 0 = no limit."),
            Option(
                "HttpProxy",
                "",
                STR,
                'Proxy for outgoing HTTP, as "host:port" or "user:password@host:port"; empty = none.',
            ),
            Option("HttpVerbose", False, BOOL, "Log the details of outgoing HTTP requests."),
            Option(
                "HttpsVerifyPeers",
                True,
                BOOL,
                "Check the certificates of HTTPS servers (false is a security risk).",
            ),
            Option(
                "HttpsCACertificates",
                "",
                STR,
                "PEM file of the CA certificates used to check HTTPS servers; empty = the system store.",
            ),
            Option(
                "Pkcs11",
                None,
                _optional(OBJECT),
                "PKCS#11 module for client certificates on smart cards or HSMs.",
                example={"Module": "/usr/local/lib/libbeidpkcs11.so", "Pin": "1234", "Verbose": True},
            ),
        ),
    ),
    (
        "Transcoding",
        (
            Option(
                "TranscodeDicomProtocol",
                True,
                BOOL,
                "Convert instances to a transfer syntax the remote side accepts in C-STORE and C-GET.",
            ),
            Option(
                "BuiltinDecoderTranscoderOrder",
                "After",
                _choice("After", "Before", "Disabled"),
                "Whether the built-in decoder and transcoder are tried after the plugins' ones, "
                "before them, or not at all (Disabled).",
            ),
            Option(
                "DicomLossyTranscodingQuality",
                90,
                _int_kind(1, 100),
                "Quality (1 to 100) when converting to a lossy (JPEG) transfer syntax.",
            ),
            Option(
                "IngestTranscoding",
                None,
                _optional(STR),
                "Transfer syntax UID every received instance is converted to before storage. A "
                "lossy target changes the SOPInstanceUID, hence the Orthanc IDs. Unset: no "
                "conversion.",
                example="1.2.840.10008.1.2",
            ),
            Option(
                "IngestTranscodingOfUncompressed",
                True,
                BOOL,
                "Apply IngestTranscoding to instances received uncompressed.",
            ),
            Option(
                "IngestTranscodingOfCompressed",
                True,
                BOOL,
                "Apply IngestTranscoding to instances received compressed.",
            ),
        ),
    ),
    (
        "DICOM dictionary",
        (
            Option(
                "Dictionary",
                {},
                Kind(_DICTIONARY_LABEL, _to_dictionary),
                'Extra tags: "gggg,eeee" -> [VR, name, min multiplicity, max multiplicity (0 = '
                'any), private creator]. For private tags write only the low byte ("gggg,ee").',
            ),
            Option(
                "LoadPrivateDictionary",
                True,
                BOOL,
                "Load the built-in dictionary of private tags.",
            ),
            Option(
                "DefaultPrivateCreator",
                "",
                STR,
                "Private creator assumed for private tags when none is given.",
            ),
            Option(
                "ExternalDictionaries",
                None,
                _optional(STR_LIST),
                "DCMTK-format dictionary files that replace the default dictionary, in order.",
                example=["/usr/share/libdcmtk/dicom.dic"],
            ),
        ),
    ),
    (
        "Plugins (built in)",
        (
            _section(
                "DicomWeb",
                "The DICOMweb server and client (Orthanc's DICOMweb plugin options).",
                DICOMWEB_OPTIONS,
                _finish_dicomweb,
            ),
            _section(
                "Worklists",
                "Modality Worklist C-FIND answered from a folder of files (Orthanc's sample "
                "worklists plugin options).",
                WORKLISTS_OPTIONS,
            ),
        ),
    ),
    (
        "Accepted for compatibility with Orthanc, ignored",
        (
            Option("Plugins", [], ANY, "Native plugins to load.", ignored=True),
            Option("LuaScripts", [], ANY, "Lua scripts to load.", ignored=True),
            Option("LuaHeartBeatPeriod", 0, ANY, "Seconds between two OnHeartBeat Lua calls.", ignored=True),
            Option(
                "LimitJobs",
                None,
                ANY,
                "Removed in Orthanc 1.4 (pending jobs limit).",
                example=10,
                ignored=True,
            ),
            Option(
                "DatabaseServerIdentifier",
                None,
                ANY,
                "Identifier of this server in a shared database.",
                example="Orthanc1",
                ignored=True,
            ),
            Option(
                "Locale",
                None,
                ANY,
                "Locale used for case-insensitive comparisons.",
                example="en_US.UTF-8",
                ignored=True,
            ),
            Option("MallocArenaMax", 5, ANY, "glibc malloc arenas.", ignored=True),
            Option(
                "Warnings",
                {
                    "W001_TagsBeingReadFromStorage": True,
                    "W002_InconsistentDicomTagsInDb": True,
                    "W003_DecoderFailure": True,
                    "W004_NoMainDicomTagsSignature": True,
                    "W005_RequestingTagFromLowerResourceLevel": True,
                    "W006_RequestingTagFromMetaHeader": True,
                    "W007_MissingRequestedTagsNotReadFromDisk": True,
                },
                ANY,
                "Switches for some warnings of Orthanc's logs.",
                ignored=True,
                default_doc="every warning true",
            ),
            Option("ZipLoaderThreads", 0, ANY, "Threads reading files for ZIP archives.", ignored=True),
            Option("LoaderThreads", 1, ANY, "Threads reading files in jobs.", ignored=True),
            Option("MaximumConcurrentDcmtkTranscoders", 0, ANY, "Transcoders running at once.", ignored=True),
            Option(
                "StorageLoaderThreads",
                None,
                ANY,
                "Threads reading the storage (1.13).",
                example=4,
                ignored=True,
            ),
            Option(
                "StorageLoaderThreadsCount",
                None,
                ANY,
                "Threads reading the storage (1.13).",
                example=4,
                ignored=True,
            ),
            Option("DicomParserThreads", 2, ANY, "DICOM parser threads (1.13).", ignored=True),
            Option("DicomParserMemoryCapacity", 256, ANY, "DICOM parser memory in MB (1.13).", ignored=True),
            Option("DicomParserCacheSize", 128, ANY, "DICOM parser cache in MB (1.13).", ignored=True),
            Option("TranscoderThreads", 4, ANY, "Transcoder threads (1.13).", ignored=True),
            Option("TranscoderMemoryCapacity", 256, ANY, "Transcoder memory in MB (1.13).", ignored=True),
            Option("TranscoderCacheSize", 128, ANY, "Transcoder cache in MB (1.13).", ignored=True),
            Option(
                "SequentialDicomReaderThreads",
                None,
                ANY,
                "Sequential reader threads (1.13).",
                example=4,
                ignored=True,
            ),
            Option(
                "SequentialDicomReaderWindowSize",
                None,
                ANY,
                "Files read ahead by a sequential reader (1.13).",
                example=4,
                ignored=True,
            ),
            Option(
                "SequentialDicomReaderWindowCapacity",
                64,
                ANY,
                "Memory in MB of a sequential reader (1.13).",
                ignored=True,
            ),
        ),
    ),
)

OPTIONS: Final[tuple[Option, ...]] = tuple(option for _, group in OPTION_GROUPS for option in group)
_BY_NAME: Final[Mapping[str, Option]] = MappingProxyType({option.name: option for option in OPTIONS})


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """Every option, under Orthanc's own name, checked and normalized; built by `load()`.

    Attributes follow `OPTIONS` one to one (checked at import). Objects are read-only mappings and
    arrays are tuples. DicomModalities / OrthancPeers hold parsed `Modality` / `Peer` values.
    """

    # General
    Name: str
    StorageDirectory: str
    IndexDirectory: str | None
    TemporaryDirectory: str | None
    StorageCompression: bool
    MaximumStorageSize: int
    MaximumPatientCount: int
    MaximumStorageMode: StorageMode
    MaximumStorageCacheSize: int
    StoreDicom: bool
    SyncStorageArea: bool
    StoreMD5ForAttachments: bool
    OverwriteInstances: bool | str
    StableAge: int
    ConcurrentJobs: int
    JobsHistorySize: int
    SaveJobs: bool
    JobsEngineThreadsCount: Mapping[str, int]
    MediaArchiveSize: int
    SynchronousZipStream: bool
    ZipUseUtf8: bool
    LogExportedResources: bool
    CheckRevisions: bool
    ReadOnly: bool
    PatientLevelEnabled: bool
    ExtraMainDicomTags: Mapping[str, tuple[str, ...]] | None
    UserMetadata: Mapping[str, int]
    UserContentType: Mapping[str, tuple[int, str]]
    StorageAccessOnFind: StorageAccess
    LimitFindResults: int
    LimitFindInstances: int
    QueryRetrieveSize: int
    StorageCommitmentReportsSize: int
    MetricsEnabled: bool
    ExecuteLuaEnabled: bool
    RestApiWriteToFileSystemEnabled: bool
    DeidentifyLogs: bool
    DeidentifyLogsDicomVersion: str
    # HTTP server
    HttpServerEnabled: bool
    HttpPort: int
    HttpBindAddresses: tuple[str, ...] | None
    OrthancExplorerEnabled: bool
    HttpDescribeErrors: bool
    HttpCompressionEnabled: bool
    HttpThreadsCount: int
    KeepAlive: bool
    KeepAliveTimeout: int
    TcpNoDelay: bool
    HttpRequestTimeout: int
    MaximumRequestBodySizeMB: int
    MaximumFileSizeInArchiveMB: int
    WebDavEnabled: bool
    WebDavDeleteAllowed: bool
    WebDavUploadAllowed: bool
    # HTTP security
    RemoteAccessAllowed: bool
    AuthenticationEnabled: bool | None
    RegisteredUsers: Mapping[str, str]
    SslEnabled: bool
    SslCertificate: str
    SslMinimumProtocolVersion: int
    SslCiphersAccepted: tuple[str, ...] | None
    SslVerifyPeers: bool
    SslTrustedClientCertificates: str
    # DICOM server (SCP)
    DicomServerEnabled: bool
    DicomAet: str
    DicomPort: int
    DicomCheckCalledAet: bool
    DicomCheckModalityHost: bool
    StrictAetComparison: bool
    DicomAlwaysAllowEcho: bool
    DicomAlwaysAllowStore: bool
    DicomAlwaysAllowFind: bool
    DicomAlwaysAllowFindWorklist: bool
    DicomAlwaysAllowGet: bool
    DicomAlwaysAllowMove: bool
    DicomScpTimeout: int
    DicomThreadsCount: int
    MaximumPduLength: int
    UnknownSopClassAccepted: bool
    AcceptedSopClasses: tuple[str, ...] | None
    RejectedSopClasses: tuple[str, ...]
    AcceptedTransferSyntaxes: tuple[str, ...]
    DeflatedTransferSyntaxAccepted: bool | None
    JpegTransferSyntaxAccepted: bool | None
    Jpeg2000TransferSyntaxAccepted: bool | None
    JpegLosslessTransferSyntaxAccepted: bool | None
    JpipTransferSyntaxAccepted: bool | None
    Mpeg2TransferSyntaxAccepted: bool | None
    Mpeg4TransferSyntaxAccepted: bool | None
    H265TransferSyntaxAccepted: bool | None
    RleTransferSyntaxAccepted: bool | None
    DefaultEncoding: str
    CaseSensitivePN: bool
    SynchronousCMove: bool
    # DICOM TLS
    DicomTlsEnabled: bool
    DicomTlsCertificate: str | None
    DicomTlsPrivateKey: str | None
    DicomTlsTrustedCertificates: str | None
    DicomTlsRemoteCertificateRequired: bool
    DicomTlsMinimumProtocolVersion: int
    DicomTlsCiphersAccepted: tuple[str, ...] | None
    # DICOM network: modalities and client (SCU)
    DicomModalities: Mapping[str, Modality]
    DicomModalitiesInDatabase: bool
    DicomScuTimeout: int
    DicomAssociationCloseDelay: int
    DicomEchoChecksFind: bool
    DicomDefaultRetrieveMethod: RetrieveMethod
    DicomScuPreferredTransferSyntax: str
    OrthancPeers: Mapping[str, Peer]
    OrthancPeersInDatabase: bool
    # Outgoing HTTP
    HttpTimeout: int
    HttpProxy: str
    HttpVerbose: bool
    HttpsVerifyPeers: bool
    HttpsCACertificates: str
    Pkcs11: Mapping[str, JsonValue] | None
    # Transcoding
    TranscodeDicomProtocol: bool
    BuiltinDecoderTranscoderOrder: TranscoderOrder
    DicomLossyTranscodingQuality: int
    IngestTranscoding: str | None
    IngestTranscodingOfUncompressed: bool
    IngestTranscodingOfCompressed: bool
    # DICOM dictionary
    Dictionary: Mapping[str, tuple[JsonValue, ...]]
    LoadPrivateDictionary: bool
    DefaultPrivateCreator: str
    ExternalDictionaries: tuple[str, ...] | None
    # Plugins (built in): sections with every sub-option filled in (see DICOMWEB_OPTIONS)
    DicomWeb: Mapping[str, JsonValue]
    Worklists: Mapping[str, JsonValue]
    # Accepted for compatibility, ignored
    Plugins: JsonValue
    LuaScripts: JsonValue
    LuaHeartBeatPeriod: JsonValue
    LimitJobs: JsonValue
    DatabaseServerIdentifier: JsonValue
    Locale: JsonValue
    MallocArenaMax: JsonValue
    Warnings: JsonValue
    ZipLoaderThreads: JsonValue
    LoaderThreads: JsonValue
    MaximumConcurrentDcmtkTranscoders: JsonValue
    StorageLoaderThreads: JsonValue
    StorageLoaderThreadsCount: JsonValue
    DicomParserThreads: JsonValue
    DicomParserMemoryCapacity: JsonValue
    DicomParserCacheSize: JsonValue
    TranscoderThreads: JsonValue
    TranscoderMemoryCapacity: JsonValue
    TranscoderCacheSize: JsonValue
    SequentialDicomReaderThreads: JsonValue
    SequentialDicomReaderWindowSize: JsonValue
    SequentialDicomReaderWindowCapacity: JsonValue

    def __getitem__(self, name: str) -> Any:
        """`settings["HttpPort"]`: any option by its Orthanc name (KeyError if unknown)."""
        if name not in _BY_NAME:
            raise KeyError(name)
        return getattr(self, name)

    def replace(self, **overrides: Any) -> Settings:
        """A copy with some options changed, each checked as if read from a file.

        Accepts JSON-like values plus os.PathLike for strings and Modality/Peer objects, e.g.
        `settings.replace(StorageDirectory=tmp_path, HttpPort=0, DicomPort=0)`. A section such as
        DicomWeb is replaced whole, its missing sub-options taking their defaults.
        """
        changes: dict[str, Any] = {}
        for name, value in overrides.items():
            option = _BY_NAME.get(name)
            if option is None:
                raise ConfigError(f'Unknown configuration option "{name}"{_did_you_mean(name)}')
            changes[name] = option.kind(value, name)
        return dataclasses.replace(self, **changes)

    @property
    def authentication_enabled(self) -> bool:
        """AuthenticationEnabled, or RemoteAccessAllowed when unset (Orthanc >= 1.5.8)."""
        if self.AuthenticationEnabled is None:
            return self.RemoteAccessAllowed
        return self.AuthenticationEnabled

    @property
    def is_http_server_secure(self) -> bool:
        """False when remote clients are accepted without authentication, or when a registered user has
        well-known sample credentials (Orthanc 1.13's IsHttpServerSecure, shown by "/system")."""
        if self.RemoteAccessAllowed and not self.authentication_enabled:
            return False
        return not any((name, str(password)) in SAMPLE_CREDENTIALS for name, password in self.RegisteredUsers.items())

    @property
    def overwrite_mode(self) -> OverwriteMode:
        """OverwriteInstances as Orthanc 1.13 names it: "Never", "Always" or "IfChanged"."""
        value = self.OverwriteInstances
        if value is True or value == "Always":
            return "Always"
        if value == "IfChanged":
            return "IfChanged"
        return "Never"

    @property
    def index_directory(self) -> str:
        """Folder of the SQLite index: IndexDirectory, or StorageDirectory when unset."""
        return self.StorageDirectory if self.IndexDirectory is None else self.IndexDirectory

    @property
    def modalities(self) -> dict[str, Modality]:
        """DicomModalities, by name, in the long form."""
        return dict(self.DicomModalities)

    @property
    def peers(self) -> dict[str, Peer]:
        """OrthancPeers, by name, in the long form."""
        return dict(self.OrthancPeers)

    @property
    def dicomweb_servers(self) -> dict[str, DicomWebServer]:
        """DicomWeb.Servers, by name, in the long form."""
        servers = self.DicomWeb.get("Servers")
        if not isinstance(servers, Mapping):
            return {}
        return {name: DicomWebServer.from_json(value, name) for name, value in servers.items()}

    @property
    def user_metadata(self) -> dict[str, int]:
        """UserMetadata: name -> metadata number (1024..65535)."""
        return dict(self.UserMetadata)

    @property
    def user_content_types(self) -> dict[str, tuple[int, str]]:
        """UserContentType: name -> (attachment type number, MIME type or "")."""
        return dict(self.UserContentType)


def _check_table_matches_settings() -> None:
    # The table drives loading and the docs, the dataclass gives typed attributes; keep them equal.
    table = [option.name for option in OPTIONS]
    attributes = [f.name for f in dataclasses.fields(Settings)]
    if table != attributes:
        missing = sorted(set(table) ^ set(attributes))
        raise RuntimeError(f"OPTIONS and Settings differ: {missing or 'order'}")


_check_table_matches_settings()


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

# Orthanc's four forms (Toolbox::SubstituteVariables): ${VAR}, ${VAR:-default}, ${VAR:-"default"}
# and ${VAR:-'default'}. A quoted default may hold characters the plain form cannot, such as "}".
_PLACEHOLDER: Final = re.compile(
    r"""\$\{(?P<plain>[^:{}]+)\}"""
    r"""|\$\{(?P<dq_name>[^:{}]+):-"(?P<dq>[^"]*)"\}"""
    r"""|\$\{(?P<sq_name>[^:{}]+):-'(?P<sq>[^']*)'\}"""
    r"""|\$\{(?P<def_name>[^:{}]+):-(?P<default>[^'"}]*)\}"""
)
_NEXT_SPECIAL_OUTSIDE_STRING: Final = re.compile(r'["/$]')
_NEXT_SPECIAL_IN_STRING: Final = re.compile(r'["\\$]')
_STRING_OR_TRAILING_COMMA: Final = re.compile(r'"(?:[^"\\]|\\.)*"|,(?=\s*[}\]])', re.DOTALL)


def _substitute(match: re.Match[str], env: Mapping[str, str], where: str) -> str:
    if match.group("plain") is not None:
        name = match.group("plain")
        if name not in env:
            # Orthanc silently substitutes "" here; say so, since it is usually a deployment bug.
            logger.warning("%s: environment variable %s is not set, replaced by an empty string", where, name)
        return env.get(name, "")
    for name_group, default_group in (("dq_name", "dq"), ("sq_name", "sq"), ("def_name", "default")):
        name = match.group(name_group)
        if name is not None:
            # As in Orthanc, the default applies only when the variable is absent (not when empty).
            return env.get(name, match.group(default_group))
    raise AssertionError("unreachable")


def _preprocess(text: str, env: Mapping[str, str], where: str) -> str:
    """Substitute ${VAR} and drop // and /* */ comments, in one pass that knows JSON strings.

    Placeholders are read as one token, so a default such as ${URL:-"http://x"} inside a string
    neither ends the string nor starts a comment; placeholders inside comments are dropped with
    the comment. Comments become newlines so that JSON error positions keep their line numbers.
    """
    out: list[str] = []
    pos, end, in_string = 0, len(text), False
    while pos < end:
        special = (_NEXT_SPECIAL_IN_STRING if in_string else _NEXT_SPECIAL_OUTSIDE_STRING).search(text, pos)
        if special is None:
            out.append(text[pos:])
            break
        at = special.start()
        out.append(text[pos:at])
        char = text[at]
        if char == "$":
            placeholder = _PLACEHOLDER.match(text, at)
            if placeholder is not None:
                out.append(_substitute(placeholder, env, where))
                pos = placeholder.end()
            else:
                out.append(char)
                pos = at + 1
        elif char == '"':
            in_string = not in_string
            out.append(char)
            pos = at + 1
        elif char == "\\":  # only in strings: keep the escaped character, whatever it is
            out.append(text[at : at + 2])
            pos = at + 2
        elif text.startswith("//", at):
            newline = text.find("\n", at)
            pos = end if newline < 0 else newline
        elif text.startswith("/*", at):
            close = text.find("*/", at + 2)
            if close < 0:
                line = text.count("\n", 0, at) + 1
                raise ConfigError(f"{where}: the /* comment opened at line {line} is never closed")
            out.append("\n" * text.count("\n", at, close))
            pos = close + 2
        else:  # a lone "/": invalid JSON, left for the parser to report
            out.append(char)
            pos = at + 1
    return "".join(out)


def _drop_trailing_commas(text: str) -> str:
    # Hand-edited Orthanc files often end an object with a comma; accept it as jsoncpp tolerates.
    return _STRING_OR_TRAILING_COMMA.sub(lambda m: m.group(0) if m.group(0) != "," else "", text)


def _parse_file(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    where = str(path)
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the configuration file ({exc.strerror})") from None
    text = _drop_trailing_commas(_preprocess(raw, env, where))

    def object_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                logger.warning('%s: key "%s" appears twice in one object; the last one is used', where, key)
            result[key] = value
        return result

    def reject_constant(name: str) -> Any:
        raise ConfigError(f"{where}: {name} is not valid JSON")

    try:
        document = json.loads(text, object_pairs_hook=object_hook, parse_constant=reject_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where}: not valid JSON (once comments are removed): {exc.msg} "
            f"at line {exc.lineno}, column {exc.colno}"
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(f"{where}: the configuration must be a JSON object, got {_json_type(document)}")
    return document


def _expand(paths: PathArg | Sequence[PathArg]) -> list[Path]:
    """The files named by the arguments: a file, or every *.json of a directory (sorted)."""
    items: Sequence[PathArg] = [paths] if isinstance(paths, (str, os.PathLike)) else paths
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() == ".json" and p.is_file())
            if not found:
                logger.warning("No *.json configuration file in directory %s", path)
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"Inexistent path to configuration: {path}")
    return files


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name, list(_BY_NAME), n=1, cutoff=0.8)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _build(document: Mapping[str, Any], origin: Mapping[str, str]) -> Settings:
    values: dict[str, Any] = {}
    for option in OPTIONS:
        present = option.name in document
        raw = document[option.name] if present else option.default
        try:
            values[option.name] = option.kind(raw, option.name)
        except ConfigError as exc:
            suffix = f" (in {origin[option.name]})" if present and option.name in origin else ""
            raise ConfigError(f"{exc}{suffix}") from None
        if present and option.ignored:
            logger.info('Configuration option "%s" is accepted but ignored by orthanc_lite', option.name)
    for key in document:
        if key not in _BY_NAME:
            logger.warning(
                'Unknown configuration option "%s" in %s (ignored)%s',
                key,
                origin.get(key, "the configuration"),
                _did_you_mean(key),
            )
    settings = Settings(**values)
    _warn_about_combinations(settings)
    return settings


def startup_refusal(settings: Settings) -> str | None:
    """Why Orthanc 1.13 refuses to start with these settings, or None: remote access with authentication
    (explicit, or implied by an unset AuthenticationEnabled) but no user to authenticate."""
    if settings.RemoteAccessAllowed and settings.authentication_enabled and not settings.RegisteredUsers:
        return ('"RemoteAccessAllowed" and "AuthenticationEnabled" are true but "RegisteredUsers" is empty: '
                'no client could ever log in. Declare a user in "RegisteredUsers", or set '
                '"AuthenticationEnabled" to false explicitly if another layer authenticates')
    return None


def check_startup_security(settings: Settings) -> None:
    """Raise ConfigError in the configurations that Orthanc 1.13 refuses to start with."""
    reason = startup_refusal(settings)
    if reason is not None:
        raise ConfigError(reason)


def _warn_about_combinations(settings: Settings) -> None:
    if settings.RemoteAccessAllowed and not settings.authentication_enabled:
        logger.warning(
            "Remote access is allowed while authentication is disabled: the HTTP server is POSSIBLY INSECURE"
        )
    if settings.JobsHistorySize == 0:
        logger.warning("JobsHistorySize is 0: synchronous REST calls that run as jobs will fail")
    if settings.DicomModalitiesInDatabase and settings.DicomModalities:
        logger.warning("DicomModalitiesInDatabase is true: the DicomModalities option is ignored")
    if settings.OrthancPeersInDatabase and settings.OrthancPeers:
        logger.warning("OrthancPeersInDatabase is true: the OrthancPeers option is ignored")


_DEFAULTS: Final[Settings] = _build({}, {})


def load(
    paths: PathArg | Sequence[PathArg] | None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read Orthanc configuration files into Settings; raise ConfigError when they are unusable.

    `paths`: one file, one directory (each *.json in it, sorted by name), several of those, or None
    for the built-in defaults. `${VAR}` placeholders are taken from `environ` (os.environ by
    default). A top-level option defined in two files is an error, as in Orthanc.
    """
    if paths is None:
        return _DEFAULTS
    env: Mapping[str, str] = os.environ if environ is None else environ
    document: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for path in _expand(paths):
        for key, value in _parse_file(path, env).items():
            if key in origin:
                raise ConfigError(
                    f'Configuration option "{key}" is defined in two files: {origin[key]} and {path}'
                )
            document[key] = value
            origin[key] = str(path)
    return _build(document, origin)


# --------------------------------------------------------------------------------------------
# Generated documentation: configuration.json and docs/configuration.md
# --------------------------------------------------------------------------------------------

_IGNORED_NOTE: Final = "Accepted for compatibility, ignored by orthanc_lite."


def _help_text(option: Option) -> str:
    return f"{option.help} {_IGNORED_NOTE}" if option.ignored else option.help


def _json_inline(value: Any) -> str:
    return json.dumps(thaw(value), ensure_ascii=False, separators=(", ", ": "))


def _render_json_value(value: Any, indent: str) -> str:
    """Orthanc's layout: scalars and arrays of scalars inline, objects one member per line."""
    value = thaw(value)
    if isinstance(value, dict) and value:
        inner = indent + "  "
        members = [f'{inner}"{key}" : {_render_json_value(item, inner)}' for key, item in value.items()]
        return "{\n" + ",\n".join(members) + f"\n{indent}}}"
    if isinstance(value, list) and value:
        if all(not isinstance(item, (dict, list)) for item in value):
            return "[ " + ", ".join(_json_inline(item) for item in value) + " ]"
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + _render_json_value(item, inner) for item in value) + f"\n{indent}]"
    return _json_inline(value)


def _last_written(options: tuple[Option, ...]) -> Option | None:
    """The last option written as a JSON member (not commented out): it takes no comma."""
    written = [option for option in options if option.default is not None]
    return written[-1] if written else None


def _render_options(options: tuple[Option, ...], indent: str, last: Option | None) -> list[str]:
    lines: list[str] = []
    for option in options:
        if lines:
            lines.append("")
        for line in textwrap.wrap(_help_text(option), width=76 - len(indent)):
            lines.append(f"{indent}// {line}")
        comma = "" if option is last else ","
        if option.default is None:
            # Unset by default: shown commented out, so that the file keeps the default.
            example = _render_json_value(option.example, indent).split("\n")
            lines.append(f'{indent}// "{option.name}" : {example[0]}')
            lines.extend(f"{indent}// {line[len(indent) :]}" for line in example[1:])
            lines[-1] += ","
        elif option.section:
            lines.append(f'{indent}"{option.name}" : {{')
            lines.extend(_render_options(option.section, indent + "  ", _last_written(option.section)))
            lines.append(f"{indent}}}{comma}")
        else:
            lines.append(f'{indent}"{option.name}" : {_render_json_value(option.default, indent)}{comma}')
    return lines


def render_documented_configuration() -> str:
    """The documented configuration.json: every option with its help and default, from OPTIONS."""
    lines = [
        "{",
        "  // orthanc_lite configuration: every option with its default value, in Orthanc's format",
        "  // (JSON with comments; ${VAR}, ${VAR:-default} read the environment). Options that are",
        "  // unset by default are shown commented out. This file is generated from OPTIONS in",
        "  // orthanc_lite/config.py by `python -m orthanc_lite.config json`: do not edit it by hand.",
    ]
    last = _last_written(OPTIONS)
    for title, group in OPTION_GROUPS:
        lines += ["", "", "  /**", f"   * {title}", "   **/", ""]
        lines += _render_options(group, "  ", last)
    lines += ["}", ""]
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    # Pipes would split the table cell; "<uuid>" would be read as an HTML tag.
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _md_default(option: Option) -> str:
    if option.default_doc:
        shown = option.default_doc
        return f"unset ({shown})" if option.default is None else shown
    if option.default is None:
        return "unset"
    if option.section:
        return "see below"
    return "`" + _md_cell(_json_inline(option.default)) + "`"


def _md_table(options: tuple[Option, ...]) -> list[str]:
    lines = ["| Option | Default | Meaning |", "|---|---|---|"]
    for option in options:
        meaning = f"*{_IGNORED_NOTE}* {option.help}" if option.ignored else option.help
        lines.append(f"| `{option.name}` | {_md_default(option)} | {_md_cell(meaning)} |")
    return lines


_MD_INTRO: Final = """\
# Configuration

<!-- Generated from OPTIONS in orthanc_lite/config.py by `python -m orthanc_lite.config markdown`.
     Do not edit by hand: tests/unit/test_config.py fails when this file is out of date. -->

orthanc_lite reads Orthanc's `configuration.json` format, with Orthanc's option names and
defaults, so an existing Orthanc configuration works as it is. The top-level `configuration.json`
of the repository lists every option with its default value.

```
python -m orthanc_lite configuration.json           # one file
python -m orthanc_lite /etc/orthanc/                # every *.json in the folder
python -m orthanc_lite base.json local.json         # several paths
python -m orthanc_lite.config check /etc/orthanc/   # only check the configuration
```

How the files are read:

- The files are JSON with `//` and `/* */` comments (not inside strings: `"http://host"` is kept).
  A trailing comma before `}` or `]` is tolerated.
- Before parsing, `${VAR}` is replaced by the environment variable `VAR` (by an empty string,
  with a warning, when it is not set). `${VAR:-default}`, `${VAR:-"default"}` and
  `${VAR:-'default'}` give a default used when `VAR` is not set. Write `"HttpPort" : ${PORT:-8042}`
  for a number and `"Name" : "${NAME:-MyOrthanc}"` for a string.
- A directory stands for every `*.json` file in it, read in name order. An option defined at the
  top level of two files is an error that names the option and both files.
- A missing option takes its default. An unknown option is logged as a warning and ignored, as
  real configurations carry options of plugins that orthanc_lite does not have.
- A value of the wrong type or out of range stops the server at startup (exit code 2) with a
  message naming the option, the expected type and the value found.
- Without any configuration path, every option has its default value (HTTP on 8042, DICOM on 4242).

`DicomModalities` entries take Orthanc's short form `["AET", "host", port]` (with an optional
fourth item, the manufacturer) or the long form, an object with `AET`, `Host`, `Port` and the
optional `Manufacturer`, `AllowEcho`, `AllowFind`, `AllowFindWorklist`, `AllowGet`, `AllowMove`,
`AllowStore`, `AllowStorageCommitment` (an alias of `AllowNAction` plus `AllowEventReport`),
`AllowTranscoding`, `UseDicomTls`, `LocalAet`, `Timeout` and `RetrieveMethod`. Every `Allow*` is
true by default. `OrthancPeers` entries take `["url"]`, `["url", "user", "password"]` or an object.
Modality and peer names may only use letters, digits, `_` and `-`.
"""


def render_markdown_documentation() -> str:
    """docs/configuration.md: a table of every option (name, default, meaning), from OPTIONS."""
    lines = _MD_INTRO.rstrip("\n").split("\n")
    for title, group in OPTION_GROUPS:
        lines += ["", f"## {title}", ""] + _md_table(group)
        for option in group:
            if option.section:
                lines += ["", f"### `{option.name}` section", "", option.help, ""]
                lines += _md_table(option.section)
    return "\n".join(lines) + "\n"


def _iter_usage() -> Iterator[str]:
    yield "usage: python -m orthanc_lite.config json | markdown | check PATH...\n"
    yield "  json      print the documented configuration.json\n"
    yield "  markdown  print docs/configuration.md\n"
    yield "  check     load the given configuration paths and report errors\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Developer entry point: regenerate the generated files, or check a configuration."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["json"] and len(args) == 1:
        sys.stdout.write(render_documented_configuration())
        return 0
    if args[:1] == ["markdown"] and len(args) == 1:
        sys.stdout.write(render_markdown_documentation())
        return 0
    if args[:1] == ["check"] and len(args) > 1:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        try:
            load(args[1:])
        except ConfigError as exc:
            sys.stderr.write(f"{exc}\n")
            return 2
        sys.stdout.write("configuration OK\n")
        return 0
    sys.stderr.write("".join(_iter_usage()))
    return 2


if __name__ == "__main__":
    sys.exit(main())
