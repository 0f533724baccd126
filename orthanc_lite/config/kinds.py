"""Value checks ("kinds") of configuration options and the JSON value types they produce."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias


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


class ConfigError(Exception):
    """The configuration cannot be used; the message names the option, file and value at fault."""


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
    to_json = getattr(value, "to_json", None)  # Modality, Peer and DicomWebServer
    if callable(to_json):
        return to_json()
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
                    f'Configuration option "{path}": "{seen[number]}" and "{name}" both use the number {number}'
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
