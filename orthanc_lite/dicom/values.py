"""DICOM element values as Orthanc (DCMTK `getString`) shows them, and dataset reading.

Sync and pure: every function only reads its arguments, so it is safe to call from any
thread of the cpu pool. Text is decoded the way Orthanc does it: the *root* dataset's
SpecificCharacterSet (0008,0005) picks the encoding for every string, nested items
included, and the configured DefaultEncoding applies when that tag is absent.
"""

from __future__ import annotations

import io
import os
import re
import struct
from typing import IO, Final, Sequence

import pydicom
from pydicom.charset import decode_bytes
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag
from pydicom.valuerep import PersonName

__all__ = [
    "ENCODINGS",
    "encoding_codec",
    "DicomReadError",
    "read_dataset",
    "dataset_codecs",
    "element_vr",
    "element_string",
    "tag_string",
    "raw_value_bytes",
    "meta_tags",
    "STRING_VRS",
    "BINARY_VRS",
]

# Orthanc "DefaultEncoding" names -> DICOM SpecificCharacterSet term
# (Enumerations.cpp::GetDicomSpecificCharacterSet). Windows1251 has no DICOM term:
# Orthanc never writes 0008,0005 for it, hence "".
ENCODINGS: Final[dict[str, str]] = {
    "Ascii": "ISO_IR 6",
    "Utf8": "ISO_IR 192",
    "Latin1": "ISO_IR 100",
    "Latin2": "ISO_IR 101",
    "Latin3": "ISO_IR 109",
    "Latin4": "ISO_IR 110",
    "Latin5": "ISO_IR 148",
    "Cyrillic": "ISO_IR 144",
    "Windows1251": "",
    "Arabic": "ISO_IR 127",
    "Greek": "ISO_IR 126",
    "Hebrew": "ISO_IR 138",
    "Thai": "ISO_IR 166",
    "Japanese": "ISO_IR 13",
    "Chinese": "GB18030",
    "JapaneseKanji": "ISO 2022 IR 87",
    "Korean": "ISO 2022 IR 149",
    "SimplifiedChinese": "ISO 2022 IR 58",
}

# Orthanc encoding name -> Python codec. "ascii" is special-cased (Toolbox::ConvertToAscii).
_CODECS: Final[dict[str, str]] = {
    "Ascii": "ascii",
    "Utf8": "utf_8",
    "Latin1": "latin_1",
    "Latin2": "iso8859_2",
    "Latin3": "iso8859_3",
    "Latin4": "iso8859_4",
    "Latin5": "iso8859_9",
    "Cyrillic": "iso8859_5",
    "Windows1251": "cp1251",
    "Arabic": "iso8859_6",
    "Greek": "iso8859_7",
    "Hebrew": "iso8859_8",
    "Thai": "tis_620",
    "Japanese": "shift_jis",
    "Chinese": "gb18030",
    "JapaneseKanji": "iso2022_jp_1",  # with JIS X 0212, as Orthanc's conversion writes "é" (ESC $ ( D)
    "Korean": "euc_kr",
    "SimplifiedChinese": "gb2312",
}

# SpecificCharacterSet term (upper case) -> Orthanc encoding name (Enumerations.cpp::GetDicomEncoding)
_TERMS: Final[dict[str, str]] = {
    "ISO_IR 6": "Ascii", "ISO 2022 IR 6": "Ascii",
    "ISO_IR 192": "Utf8",
    "ISO_IR 100": "Latin1", "ISO 2022 IR 100": "Latin1",
    "ISO_IR 101": "Latin2", "ISO 2022 IR 101": "Latin2",
    "ISO_IR 109": "Latin3", "ISO 2022 IR 109": "Latin3",
    "ISO_IR 110": "Latin4", "ISO 2022 IR 110": "Latin4",
    "ISO_IR 148": "Latin5", "ISO 2022 IR 148": "Latin5",
    "ISO_IR 144": "Cyrillic", "ISO 2022 IR 144": "Cyrillic",
    "ISO_IR 127": "Arabic", "ISO 2022 IR 127": "Arabic",
    "ISO_IR 126": "Greek", "ISO 2022 IR 126": "Greek",
    "ISO_IR 138": "Hebrew", "ISO 2022 IR 138": "Hebrew",
    "ISO_IR 166": "Thai", "ISO 2022 IR 166": "Thai",
    "ISO_IR 13": "Japanese", "ISO 2022 IR 13": "Japanese",
    "GB18030": "Chinese", "GBK": "Chinese",
    "ISO 2022 IR 149": "Korean",
    "ISO 2022 IR 87": "JapaneseKanji",
    "ISO 2022 IR 58": "SimplifiedChinese",
}

# Codecs of the terms that may appear in a multi-valued (code extension) charset.
_EXTENSION_CODECS: Final[dict[str, str]] = {
    "ISO 2022 IR 6": "latin_1", "ISO_IR 6": "latin_1",
    "ISO 2022 IR 13": "shift_jis", "ISO_IR 13": "shift_jis",
    "ISO 2022 IR 87": "iso2022_jp",
    "ISO 2022 IR 159": "iso2022_jp_2",
    "ISO 2022 IR 149": "euc_kr",
    "ISO 2022 IR 58": "iso_ir_58",
    "ISO 2022 IR 100": "latin_1",
    "ISO 2022 IR 101": "iso8859_2",
    "ISO 2022 IR 109": "iso8859_3",
    "ISO 2022 IR 110": "iso8859_4",
    "ISO 2022 IR 126": "iso_ir_126",
    "ISO 2022 IR 127": "iso_ir_127",
    "ISO 2022 IR 138": "iso_ir_138",
    "ISO 2022 IR 144": "iso_ir_144",
    "ISO 2022 IR 148": "iso_ir_148",
    "ISO 2022 IR 166": "iso_ir_166",
}

STRING_VRS: Final[frozenset[str]] = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
BINARY_VRS: Final[frozenset[str]] = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_NUMBER_FORMATS: Final[dict[str, tuple[str, int]]] = {
    "US": ("H", 2), "SS": ("h", 2), "UL": ("L", 4), "SL": ("l", 4),
    "UV": ("Q", 8), "SV": ("q", 8), "FL": ("f", 4), "FD": ("d", 8),
}
# DCMTK resolves these "US or SS" tags of implicit VR data by PixelRepresentation
_XS_BY_PIXEL_REPRESENTATION: Final[frozenset[int]] = frozenset({
    0x00280120, 0x00280121, 0x00603004, 0x00603006, 0x00189810, 0x00280106, 0x00280107,
    0x00280108, 0x00280109, 0x00283002, 0x00409211, 0x00409216,
})
_ESC: Final = 0x1B
_ESCAPES: Final = re.compile("\x1b[\x20-\x2f]*[\x30-\x7e]")
_PN_DELIMS: Final[set[int]] = {0x5C, 0x5E, 0x3D}
_TEXT_DELIMS: Final[set[int]] = {0x5C, 0x0D, 0x0A, 0x09, 0x0C}
_UI_SPACES: Final[bytes] = b" \t\n\v\f\r"


class DicomReadError(ValueError):
    """The data is not a DICOM file (or is too damaged to be parsed)."""


def encoding_codec(name: str) -> str | None:
    """The Python codec of an Orthanc encoding name ("Latin1" -> "latin_1"), None when unknown."""
    return _CODECS.get(name)


def read_dataset(
    source: str | os.PathLike[str] | bytes | IO[bytes],
    default_encoding: str = "Latin1",
    stop_before_pixels: bool = False,
    defer_size: int | None = None,
) -> Dataset:
    """Parse DICOM (with or without preamble/meta header) and remember the default encoding.

    `default_encoding` is an Orthanc encoding name (a key of ENCODINGS); it decodes text when
    the dataset has no SpecificCharacterSet. It is stored on the dataset (pydicom's
    `_parent_encoding`), so no tag is added. Raises DicomReadError for non-DICOM data.
    """
    if default_encoding not in _CODECS:
        raise ValueError(f"unknown encoding: {default_encoding}")
    fp: IO[bytes] | str | os.PathLike[str]
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        ds = pydicom.dcmread(fp, force=True, stop_before_pixels=stop_before_pixels, defer_size=defer_size)
    except (InvalidDicomError, EOFError, struct.error, ValueError, KeyError, IndexError,
            OverflowError, TypeError, NotImplementedError, MemoryError, AttributeError) as exc:
        raise DicomReadError(f"not a DICOM file: {exc}") from exc
    if not _looks_like_dicom(ds):
        raise DicomReadError("not a DICOM file")
    ds._parent_encoding = _CODECS[default_encoding]
    ds._orthanc_default_encoding = default_encoding  # read back by dataset_codecs()
    ds._orthanc_meta_tags = _tags_inside_meta_group(ds)  # read back by meta_tags()
    return ds


def _tags_inside_meta_group(ds: Dataset) -> frozenset[int]:
    """Dataset tags that a too-long meta group length covers.

    DCMTK trusts (0002,0000): elements inside that length belong to the meta header (Orthanc
    shows them in /header, not in /tags or /content), even when their group is not 0002.
    """
    if ds.preamble is None or "FileMetaInformationGroupLength" not in ds.file_meta:
        return frozenset()
    try:
        end = 144 + int(ds.file_meta.FileMetaInformationGroupLength)  # 128 + "DICM" + 12
    except (TypeError, ValueError):
        return frozenset()
    tags: list[int] = []
    for tag in sorted(ds.keys()):
        elem = ds.get_item(tag, keep_deferred=True)
        if not isinstance(elem, RawDataElement) or elem.value_tell >= end:
            break
        tags.append(int(tag))
    return frozenset(tags)


def meta_tags(ds: Dataset) -> frozenset[int]:
    """Tags of `ds` that Orthanc (DCMTK) reads as part of the meta header (see read_dataset)."""
    tags = getattr(ds, "_orthanc_meta_tags", None)
    return tags if isinstance(tags, frozenset) else frozenset()


def _looks_like_dicom(ds: Dataset) -> bool:
    """Reject what `force=True` makes of random bytes: no meta header and nonsense tags."""
    if len(ds.file_meta) > 0 and "TransferSyntaxUID" in ds.file_meta:
        return True
    tags = list(ds.keys())
    if not tags:
        return False
    # A headerless dataset starts with a low group (0008 typically) and is sorted.
    return tags[0].group <= 0x0010 and all(a < b for a, b in zip(tags, tags[1:]))


def dataset_codecs(ds: Dataset) -> tuple[str, ...]:
    """Python codecs that Orthanc would use for the text of `ds` (a root dataset).

    A single codec normally; several for ISO 2022 code extensions. "ascii" means
    Orthanc's ConvertToAscii (printable ASCII kept, anything else dropped).
    """
    elem = ds.get_item(0x00080005) if 0x00080005 in ds else None
    terms: list[str] = []
    if elem is not None:
        raw = raw_value_bytes(elem)
        if raw is not None:
            terms = [t.strip(" \0") for t in raw.decode("latin_1").split("\\")]
    first = next((t for t in terms if t), None)
    if first is None:
        name = getattr(ds, "_orthanc_default_encoding", None)
        if isinstance(name, str) and name in _CODECS:
            return (_CODECS[name],)
        parent = ds._parent_encoding
        return (parent,) if isinstance(parent, str) else tuple(parent) or ("latin_1",)
    normalized = first.upper().replace("ISO_IR_", "ISO_IR ").replace("ISO_2022_IR_", "ISO 2022 IR ")
    name = _TERMS.get(normalized)
    if name is None:
        return ("ascii",)  # Orthanc: unsupported charset -> remove all special characters
    if len(terms) > 1:
        # Code extensions: first codec is the default G0/G1, the others are reached by escapes
        codecs = [_CODECS[name] if name != "Ascii" else "latin_1"]
        for term in terms[1:]:
            codec = _EXTENSION_CODECS.get(term.strip().upper())
            if codec and codec not in codecs:
                codecs.append(codec)
        return tuple(codecs)
    return (_CODECS[name],)


def element_vr(elem: DataElement | RawDataElement, ds: Dataset | None = None) -> str:
    """The VR DCMTK would give `elem`: the explicit VR, or the dictionary VR for implicit data.

    Ambiguous dictionary VRs resolve as DCMTK's DcmItem::checkAndUpdateVR does: a few "US or
    SS" tags by PixelRepresentation in the same item (`ds`); the others stay ambiguous and
    are returned as "xs" (no string value: Orthanc shows Null); "OB or OW" gives "OW".
    Explicit UN stays UN (see dicom_json for how Orthanc shows it). Unknown tags give "UN".
    """
    vr = elem.VR
    if vr is None or vr == "UN" and isinstance(elem, RawDataElement) and elem.is_implicit_VR:
        vr = _dictionary_vr(BaseTag(elem.tag))
    if vr and " or " in vr:
        if vr != "US or SS":
            return "OW"
        if int(elem.tag) in _XS_BY_PIXEL_REPRESENTATION and ds is not None and 0x00280103 in ds:
            return "SS" if element_string(ds.get_item(0x00280103)) == "1" else "US"
        return "xs"
    return vr or "UN"


def _dictionary_vr(tag: BaseTag) -> str:
    if tag.element == 0 and tag.group != 0xFFFE:
        return "UL"  # group lengths
    if tag.is_private and tag.element < 0x0100 and tag.element >= 0x0010:
        return "LO"  # private creator
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return "UN"


def raw_value_bytes(elem: DataElement | RawDataElement) -> bytes | None:
    """The element value as stored (bytes), or None for sequences/encapsulated pixel data.

    For a DataElement that pydicom already decoded (or that was built in memory), the value
    is re-encoded (text as UTF-8, numbers little endian).
    """
    if isinstance(elem, RawDataElement):
        value = elem.value
        if value is None:
            return b""
        return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else None
    value = elem.value
    if isinstance(value, DicomSequence):
        return None
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    vr = elem.VR
    if vr in _NUMBER_FORMATS:
        fmt, _ = _NUMBER_FORMATS[vr]
        items = list(value) if isinstance(value, (list, MultiValue)) else [value]
        return struct.pack("<" + fmt * len(items), *items)
    if vr == "AT":
        items = list(value) if isinstance(value, (list, MultiValue)) else [value]
        return b"".join(struct.pack("<HH", int(t) >> 16, int(t) & 0xFFFF) for t in items)
    text = element_string(elem)
    if text is None:
        return None
    raw = text.encode("utf_8")
    if len(raw) % 2:
        raw += b"\0" if vr == "UI" else b" "
    return raw


def element_string(
    elem: DataElement | RawDataElement,
    codecs: Sequence[str] | None = None,
    vr: str | None = None,
) -> str | None:
    """The value as Orthanc/DCMTK `getString` shows it, as a str; None if it has no string form.

    Strings: multi-values joined with "\\", trailing padding removed (spaces; NUL for UI),
    PN as the raw "Alphabetic=Ideographic=Phonetic" text. Numbers (US/SS/UL/SL/FL/FD) as
    boost::lexical_cast prints them, all values joined with "\\". AT as "gggg,eeee" (first
    value). Sequences and binary VRs (OB/OW/UN/...) give None, as does an empty number.
    Raw elements are decoded with `codecs` (see dataset_codecs(); default Latin-1); pydicom
    elements that were already decoded use their decoded value.
    """
    if vr is None:
        vr = element_vr(elem)
    if vr == "SQ" or vr == "xs" or vr in BINARY_VRS:
        return None
    if isinstance(elem, RawDataElement):
        raw = raw_value_bytes(elem)
        if raw is None:
            return None
        return _raw_to_string(raw, vr, elem.is_little_endian, codecs or ("latin_1",))
    return _value_to_string(elem.value, vr)


def tag_string(ds: Dataset, tag: int, codecs: Sequence[str] | None = None) -> str | None:
    """element_string() of `tag` in `ds`, None when absent; text decoded as Orthanc does.

    `codecs` defaults to dataset_codecs(ds), which is right for a root dataset; for an item of
    a sequence, pass the codecs of its root dataset.
    """
    if tag not in ds:
        return None
    elem = ds.get_item(tag)
    if elem is None:
        return None
    return element_string(elem, codecs if codecs is not None else dataset_codecs(ds), element_vr(elem, ds))


def _raw_to_string(raw: bytes, vr: str, little: bool, codecs: Sequence[str]) -> str | None:
    if vr in _NUMBER_FORMATS:
        fmt, size = _NUMBER_FORMATS[vr]
        if len(raw) > size and len(raw) % size:
            # DCMTK pads a value whose length is no multiple of the VR's size with zeros ("8\\0" for a
            # 3-byte US), and Orthanc shows what DCMTK reads
            raw = raw + b"\0" * (size - len(raw) % size)
        count = len(raw) // size if len(raw) >= size else 0
        if count == 0:
            return None
        values = struct.unpack(("<" if little else ">") + fmt * count, raw[: count * size])
        return "\\".join(_format_number(v, vr) for v in values)
    if vr == "AT":
        if len(raw) < 4:
            return None
        group, element = struct.unpack("<HH" if little else ">HH", raw[:4])
        return f"{group:04x},{element:04x}"
    if vr not in STRING_VRS:
        return None
    # DCMTK: UI drops all whitespace, then trailing padding goes; Orthanc reads a C string
    if vr == "UI":
        raw = raw.translate(None, _UI_SPACES).rstrip(b"\0")
    else:
        raw = raw.rstrip(b" ")
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    return _decode(raw, codecs, vr)  # Orthanc converts every string VR, not only LO/PN/...


def _decode(raw: bytes, codecs: Sequence[str], vr: str) -> str:
    has_esc = _ESC in raw
    if raw.isascii() and not has_esc:
        text = raw.decode("ascii")
        return _to_ascii(text) if codecs[0] == "ascii" else text
    if codecs[0] == "ascii":
        return _to_ascii(raw.decode("latin_1"))
    if has_esc:
        # ISO 2022 code extensions: escapes switch codecs (Orthanc: iconv, then strips escapes)
        delims = _PN_DELIMS if vr == "PN" else _TEXT_DELIMS
        try:
            return _ESCAPES.sub("", decode_bytes(raw, list(codecs), delims))
        except (UnicodeError, LookupError, ValueError):
            pass
    return raw.decode(codecs[0], errors="ignore")


def _to_ascii(text: str) -> str:
    """Toolbox::ConvertToAscii: keep printable ASCII (and newlines) only."""
    return "".join(c for c in text if 32 <= ord(c) < 127 or c == "\n")


def _format_number(value: int | float, vr: str) -> str:
    if vr == "FL":
        value = struct.unpack("<f", struct.pack("<f", float(value)))[0]  # in-memory floats
    if vr in ("FL", "FD"):
        # Orthanc 1.10.1 (boost::lexical_cast) prints FL too with 17 significant digits
        return _format_float(float(value), 17)
    return str(int(value))


def _format_float(value: float, digits: int) -> str:
    """boost::lexical_cast<std::string>(float/double) as observed: %.17g."""
    if value != value:
        return "nan" if str(value)[0] != "-" else "-nan"
    return "%.*g" % (digits, value)


def _value_to_string(value: object, vr: str) -> str | None:
    """Same as _raw_to_string, for values pydicom already decoded or built in memory."""
    items = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    if vr in _NUMBER_FORMATS:
        numbers = [v for v in items if v is not None and v != ""]
        if not numbers:
            return None
        return "\\".join(_format_number(v, vr) for v in numbers)  # type: ignore[arg-type]
    if vr == "AT":
        if not items or items[0] is None or items[0] == "":
            return None
        tag = BaseTag(int(items[0]))  # type: ignore[arg-type]
        return f"{tag.group:04x},{tag.element:04x}"
    if value is None:
        return ""
    parts: list[str] = []
    for item in items:
        if item is None:
            parts.append("")
        elif isinstance(item, PersonName):
            parts.append(str(item))
        elif isinstance(item, (bytes, bytearray)):
            parts.append(bytes(item).decode("latin_1"))
        else:
            original = getattr(item, "original_string", None)
            parts.append(original if isinstance(original, str) else str(item))
    text = "\\".join(parts)
    if vr == "UI":
        text = "".join(c for c in text if c not in " \t\n\v\f\r").rstrip("\0")
    else:
        text = text.rstrip(" ")
    return text.split("\0", 1)[0]
