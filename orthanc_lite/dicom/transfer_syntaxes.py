"""Transfer syntaxes: Orthanc's list, AcceptedTransferSyntaxes wildcards and the legacy *TransferSyntaxAccepted
switches. Shared by the DICOM server (what a C-STORE may use) and GET/PUT /tools/accepted-transfer-syntaxes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from .matching import wildcard_regex

# Orthanc's DicomTransferSyntax enumeration, in its order: what /tools/accepted-transfer-syntaxes lists
# (checked against Orthanc 1.10.1: `PUT *` answers exactly these).
ORTHANC_SYNTAXES: Final = (
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2",
    *(f"1.2.840.10008.1.2.4.{n}" for n in (50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66,
                                          70, 80, 81, 90, 91, 92, 93, 94, 95, 100, 101, 102, 103, 104, 105,
                                          106, 107, 108)),
    "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.6.1", "1.2.840.10008.1.2.6.2",
)  # fmt: skip


def _known_syntaxes() -> tuple[str, ...]:
    from pydicom.uid import AllTransferSyntaxes

    out = dict.fromkeys(ORTHANC_SYNTAXES)
    out["1.2.840.10008.1.20"] = None  # Papyrus 3 Implicit VR Little Endian (retired), as DCMTK knows it
    out.update(dict.fromkeys(str(ts) for ts in AllTransferSyntaxes))
    return tuple(out)


# Orthanc's list plus what pydicom knows: the UIDs that the AcceptedTransferSyntaxes wildcards are expanded
# against for the DICOM server.
KNOWN_SYNTAXES: Final = _known_syntaxes()

# The legacy *TransferSyntaxAccepted switches (Orthanc <= 1.8.2), each naming a group of syntaxes.
SYNTAX_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "DeflatedTransferSyntaxAccepted": ("1.2.840.10008.1.2.1.99",),
    "JpegTransferSyntaxAccepted": tuple(f"1.2.840.10008.1.2.4.{n}" for n in (
        50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 70)),
    "Jpeg2000TransferSyntaxAccepted": tuple(f"1.2.840.10008.1.2.4.{n}" for n in (90, 91, 92, 93)),
    "JpegLosslessTransferSyntaxAccepted": ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"),
    "JpipTransferSyntaxAccepted": ("1.2.840.10008.1.2.4.94", "1.2.840.10008.1.2.4.95"),
    "Mpeg2TransferSyntaxAccepted": ("1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101"),
    "Mpeg4TransferSyntaxAccepted": tuple(f"1.2.840.10008.1.2.4.{n}" for n in (102, 103, 104, 105, 106)),
    "H265TransferSyntaxAccepted": ("1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108"),
    "RleTransferSyntaxAccepted": ("1.2.840.10008.1.2.5",),
}


def accepted_syntaxes(patterns: Iterable[str], settings: Any, configured: bool) -> frozenset[str]:
    """Expand AcceptedTransferSyntaxes; the legacy *TransferSyntaxAccepted switches apply on top of the
    configured list (`configured`), not on a list changed at runtime by PUT /tools/accepted-transfer-syntaxes."""
    regexes = [wildcard_regex(p.strip()) for p in patterns if p.strip()]
    out = {ts for ts in KNOWN_SYNTAXES if any(r.fullmatch(ts) for r in regexes)}
    if configured:
        for option, group in SYNTAX_GROUPS.items():
            value = getattr(settings, option, None)
            if value is True:
                out.update(group)
            elif value is False:
                out.difference_update(group)
    return frozenset(out)


def in_effect(patterns: Iterable[str], settings: Any) -> frozenset[str]:
    """The syntaxes accepted now: the switches apply while the list is still the configured one."""
    patterns = list(patterns)
    return accepted_syntaxes(patterns, settings, patterns == list(settings.AcceptedTransferSyntaxes))


def listed(accepted: frozenset[str]) -> list[str]:
    """The accepted syntaxes as Orthanc lists them: its own UIDs, in its order."""
    return [ts for ts in ORTHANC_SYNTAXES if ts in accepted]
