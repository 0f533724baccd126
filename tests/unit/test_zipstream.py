"""The forward-only ZIP writer, read back by Python's zipfile: whole and streamed members, UTF-8 names, and the
ZIP64 end records that more than 65,535 members need."""

from __future__ import annotations

import io
import zipfile

from orthanc_lite.services.archive_names import UniqueNames, folder_name, instance_format, instance_numbers, sanitize
from orthanc_lite.services.zipstream import StreamDeflater, ZipStreamWriter, deflate_member


def _build(members: dict[str, bytes], streamed: set[str] = frozenset()) -> bytes:  # type: ignore[assignment]
    w = ZipStreamWriter()
    out = io.BytesIO()
    for name, data in members.items():
        if name in streamed:
            out.write(w.begin_member(name, len(data)))
            d = StreamDeflater(2)
            for i in range(0, len(data), 1000):
                out.write(w.member_data(d.feed(data[i:i + 1000])))
            out.write(w.member_data(d.finish()))
            out.write(w.end_member(d.crc, d.compressed_size, d.size))
        else:
            for part in w.whole_member(name, deflate_member(data, 6)):
                out.write(part)
    out.write(w.finish())
    assert w.offset == out.tell()
    return out.getvalue()


def test_members_read_back() -> None:
    members = {"a/b.dcm": b"hello" * 1000, "empty": b"", "c/ü.dcm": bytes(range(256)) * 50, "s": b"x" * 5555}
    z = zipfile.ZipFile(io.BytesIO(_build(members, streamed={"s"})))
    assert z.testzip() is None
    assert {n: z.read(n) for n in z.namelist()} == members
    assert z.getinfo("c/ü.dcm").flag_bits & 0x800


def test_zip64_end_records_for_many_members() -> None:
    members = {f"f{i}": b"" for i in range(70_000)}
    z = zipfile.ZipFile(io.BytesIO(_build(members)))
    assert len(z.namelist()) == 70_000 and z.read("f69999") == b""


def test_names() -> None:
    assert sanitize("  Doe^^John  ") == "Doe John"
    assert sanitize("../../etc/passwd") == "etc passwd"
    assert sanitize("..") == "" and sanitize(".hidden") == "hidden"
    assert sanitize("a\x00b:c*d?e|f\"g<h>i") == "abcdefghi"
    assert sanitize("Jöhn") == "Jhn" and sanitize("Jöhn", allow_utf8=True) == "Jöhn"
    assert len(sanitize("x" * 500).encode()) <= 200
    assert folder_name({"0010,0020": "887", "0010,0010": "KNEE"}, ("0010,0020", "0010,0010"), "Unknown Patient") == "887 - KNEE"
    assert folder_name({"0010,0010": "^"}, ("0010,0020", "0010,0010"), "Unknown Patient") == "Unknown Patient"
    assert instance_format("MR") % 3 == "MR000003.dcm"
    assert instance_format("c") % 3 == "C0000003.dcm" and instance_format("") % 3 == "00000003.dcm"
    assert instance_numbers([3, 1, 2]) == [3, 1, 2] and instance_numbers([5, 5]) == [1, 2]
    names = UniqueNames()
    assert [names.take(n) for n in ("a", "a", "A", "b")] == ["a", "a-2", "A-3", "b"]
