"""Every ErrorCode has the number and description that real Orthanc prints with `Orthanc --errors` (codes
added after 1.10.1, such as 2045 DicomGetUnavailable, are absent from its list and skipped)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from orthanc_lite.errors import ErrorCode
from tests.conftest import ORTHANC_BIN


def test_codes_are_unique() -> None:
    codes = [member.code for member in ErrorCode]
    assert len(codes) == len(set(codes))


@pytest.mark.orthanc
@pytest.mark.skipif(not os.path.exists(ORTHANC_BIN), reason="real Orthanc is not installed")
def test_same_codes_as_real_orthanc() -> None:
    listing = subprocess.run([ORTHANC_BIN, "--errors"], capture_output=True, text=True, timeout=30).stdout
    real = {int(m.group(1)): m.group(2) for m in re.finditer(r"^\s+(-?\d+)\s+(.*\S)\s*$", listing, re.MULTILINE)}
    assert len(real) > 100
    differing = {member.name: (member.code, member.description, real[member.code])
                 for member in ErrorCode if member.code in real and real[member.code] != member.description}
    assert differing == {}
    assert sum(member.code in real for member in ErrorCode) >= len(ErrorCode) - 5
