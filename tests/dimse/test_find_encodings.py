"""C-FIND SCP details of Tests.py: SpecificCharacterSet of the answers follows DefaultEncoding, names converted to
it (test_findscu_encoding); an IMAGE-level query over an instance without Rows (test_findscu_missing_tags).
dcmtk findscu writes the answers to files (-X), read back as raw bytes; compared with real Orthanc."""

from __future__ import annotations

import io
import pathlib

import aiohttp
import pydicom
from pydicom.datadict import keyword_for_tag
import pytest
import requests

import orthanc_lite
from orthanc_lite.config import Settings
from tests.conftest import testdata
from tests.data.make_samples import make_instance
from tests.dimse.dimse_helpers import requires_dcmtk, run_tool
from tests.e2e.orthanc_peer import ORTHANC_AVAILABLE, SKIP_REASON, start_orthanc

pytestmark = requires_dcmtk

TEST = "Test-éüäöòДΘĝדصķћ๛ﾈİ"  # the name in ../shared/testdata/dicom/Encodings/Lena-*.dcm
# DefaultEncoding -> (SpecificCharacterSet term, Python codec, Encodings file suffix)
ENCODINGS = {
    "Arabic": ("ISO_IR 127", "iso8859_6", "arabic"),
    "Ascii": ("ISO_IR 6", "ascii", "ascii"),
    "Cyrillic": ("ISO_IR 144", "iso8859_5", "cyrillic"),
    "Greek": ("ISO_IR 126", "iso8859_7", "greek"),
    "Hebrew": ("ISO_IR 138", "iso8859_8", "hebrew"),
    "Japanese": ("ISO_IR 13", "shift_jis", "shift-jis"),
    "Latin1": ("ISO_IR 100", "latin_1", "latin1"),
    "Latin2": ("ISO_IR 101", "iso8859_2", "latin2"),
    "Latin3": ("ISO_IR 109", "iso8859_3", "latin3"),
    "Latin4": ("ISO_IR 110", "iso8859_4", "latin4"),
    "Latin5": ("ISO_IR 148", "iso8859_9", "latin5"),
    "Thai": ("ISO_IR 166", "tis_620", "tis-620"),
    "Utf8": ("ISO_IR 192", "utf_8", "utf8"),
}


async def findscu(port: int, keys: list[str], out: pathlib.Path) -> list[dict[str, bytes]]:
    """Run findscu (-X); each answer as {keyword: raw value bytes}, nothing decoded."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("rsp*.dcm"):
        old.unlink()
    args = ["-S", "-X", "-od", str(out), "-aet", "FINDSCU", "-aec", "ORTHANC"]
    for key in keys:
        args += ["-k", key]
    result = await run_tool("findscu", *args, "127.0.0.1", str(port))
    assert result.ok, result.output
    answers = []
    for path in sorted(out.glob("rsp*.dcm")):
        ds = pydicom.dcmread(io.BytesIO(path.read_bytes()), force=True)
        answers.append({keyword_for_tag(tag) or str(tag): _raw(ds, tag) for tag in list(ds.keys())})
    return answers


def _raw(ds: pydicom.Dataset, tag: pydicom.tag.BaseTag) -> bytes:
    raw = ds.get_item(tag)
    value = raw.value if raw is not None else b""
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode()


def expected_name(source_codec: str, answer_codec: str) -> bytes:
    """TEST as stored in the file's own encoding, then converted to the answer's (unmappable chars dropped)."""
    stored = TEST.encode(source_codec, "ignore").decode(source_codec)
    return stored.encode(answer_codec, "ignore")


async def _put_encoding(http: aiohttp.ClientSession, name: str) -> None:
    async with http.put("/tools/default-encoding", data=name.encode()) as resp:
        assert resp.status == 200 and await resp.text() == name


async def test_charset_follows_default_encoding(settings: Settings, tmp_path: pathlib.Path) -> None:
    async with orthanc_lite.serve(settings.replace(DicomAlwaysAllowFind=True), host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        async with http.post("/instances", data=testdata("Encodings", "Lena-utf8.dcm").read_bytes()) as resp:
            assert resp.status == 200
        for name, (term, codec, _) in ENCODINGS.items():
            await _put_encoding(http, name)
            answers = await findscu(srv.dicom_port, ["QueryRetrieveLevel=STUDY", "SpecificCharacterSet",
                                                     "PatientName"], tmp_path / name)
            assert len(answers) == 1, name
            assert answers[0]["SpecificCharacterSet"].strip() == term.encode(), name
            assert answers[0]["PatientName"].rstrip(b" ") == expected_name("utf_8", codec), name


@pytest.mark.parametrize("master", ["Latin1", "Utf8", "Cyrillic"])
async def test_names_converted_from_every_source_encoding(settings: Settings, tmp_path: pathlib.Path,
                                                          master: str) -> None:
    async with orthanc_lite.serve(settings.replace(DicomAlwaysAllowFind=True), host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        await _put_encoding(http, master)
        term, master_codec, _ = ENCODINGS[master]
        for name, (_, codec, suffix) in ENCODINGS.items():
            async with http.post("/tools/bulk-delete", json={"Resources": await _all_patients(http)}) as resp:
                assert resp.status == 200
            async with http.post("/instances", data=testdata("Encodings", f"Lena-{suffix}.dcm").read_bytes()) as r:
                assert r.status == 200
            answers = await findscu(srv.dicom_port, ["QueryRetrieveLevel=STUDY", "PatientID", "SpecificCharacterSet",
                                                     "PatientName"], tmp_path / name)
            assert len(answers) == 1, name
            assert answers[0]["SpecificCharacterSet"].strip() == term.encode()
            assert answers[0]["PatientID"].strip() == suffix.encode()
            assert answers[0]["PatientName"].rstrip(b" ") == expected_name(codec, master_codec), name
            # REST shows the name decoded from the file's own encoding, whatever DefaultEncoding is.
            async with http.post("/tools/find", json={"Level": "Study", "Query": {}, "Expand": True}) as resp:
                studies = await resp.json()
            assert [s["PatientMainDicomTags"]["PatientName"] for s in studies] == [
                TEST.encode(codec, "ignore").decode(codec)], name


async def _all_patients(http: aiohttp.ClientSession) -> list[str]:
    async with http.get("/patients") as resp:
        return list(await resp.json())


def _without_rows(pixels_rows: bool, malformed: bool = False) -> bytes:
    """DummyCTInvalidRows.dcm of the suite: the same study, another instance, Rows removed (or 3 bytes long)."""
    ds = pydicom.dcmread(io.BytesIO(make_instance("KNIX", "KNIX", study_uid="1.2.3.4", series_uid="1.2.3.4.5",
                                                  size=8)))
    if not pixels_rows:
        del ds.Rows
    buf = io.BytesIO()
    ds.save_as(buf)
    data = buf.getvalue()
    if malformed:  # Rows (US) holding 3 bytes: a value length no US value can have
        explicit = b"\x28\x00\x10\x00US\x02\x00\x08\x00"
        assert data.count(explicit) == 1
        data = data.replace(explicit, b"\x28\x00\x10\x00US\x03\x00\x08\x00\x00")
    return data


async def test_missing_rows_at_image_level(settings: Settings, tmp_path: pathlib.Path) -> None:
    async with orthanc_lite.serve(settings.replace(DicomAlwaysAllowFind=True), host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        for data in (_without_rows(True), _without_rows(False)):
            async with http.post("/instances", data=data) as resp:
                assert resp.status == 200, await resp.text()
        answers = await findscu(srv.dicom_port, ["0008,0052=IMAGES", "Rows", "PatientName"], tmp_path / "find")
    assert [a["PatientName"].strip() for a in answers] == [b"KNIX", b"KNIX"]
    rows = [int.from_bytes(a["Rows"], "little") for a in answers if a.get("Rows")]
    assert rows == [8]  # only the instance that has Rows answers a value; the other one an empty Rows


@pytest.mark.orthanc
@pytest.mark.skipif(not ORTHANC_AVAILABLE, reason=SKIP_REASON)
async def test_same_answers_as_real_orthanc(settings: Settings, tmp_path: pathlib.Path) -> None:
    files = [testdata("Encodings", "Lena-latin2.dcm").read_bytes(), testdata("Encodings", "Lena-greek.dcm").read_bytes(),
             _without_rows(True), _without_rows(False), _without_rows(True, malformed=True)]
    queries = [["QueryRetrieveLevel=STUDY", "PatientID", "SpecificCharacterSet", "PatientName"],
               ["0008,0052=IMAGES", "Rows", "PatientName", "SOPInstanceUID"]]
    with start_orthanc(tmp_path / "orthanc", {"DefaultEncoding": "Cyrillic", "DicomAlwaysAllowFind": True}) as peer:
        ids = [requests.post(peer.url + "/instances", data=data, timeout=30).json()["ID"] for data in files]
        theirs = [await findscu(peer.dicom_port, q, tmp_path / f"orthanc{i}") for i, q in enumerate(queries)]
        their_rows = requests.get(f"{peer.url}/instances/{ids[-1]}/simplified-tags", timeout=30).json()["Rows"]
    async with orthanc_lite.serve(settings.replace(DicomAlwaysAllowFind=True, DefaultEncoding="Cyrillic"),
                                  host="127.0.0.1") as srv, aiohttp.ClientSession(base_url=srv.url) as http:
        for data in files:
            async with http.post("/instances", data=data) as resp:
                assert resp.status == 200
        ours = [await findscu(srv.dicom_port, q, tmp_path / f"lite{i}") for i, q in enumerate(queries)]
        async with http.get(f"/instances/{ids[-1]}/simplified-tags") as resp:
            assert (await resp.json())["Rows"] == their_rows == "8\\0"  # the 3-byte Rows, as DCMTK reads it
    for mine, orth in zip(ours, theirs):
        key = lambda a: (a.get("PatientID", b""), a.get("SOPInstanceUID", b""))  # noqa: E731
        assert sorted(mine, key=key) == sorted(orth, key=key)


@pytest.mark.orthanc
@pytest.mark.skipif(not ORTHANC_AVAILABLE, reason=SKIP_REASON)
async def test_every_default_encoding_as_real_orthanc(settings: Settings, tmp_path: pathlib.Path) -> None:
    """All the encodings Orthanc knows (including Windows1251, Chinese, JapaneseKanji, Korean, SimplifiedChinese):
    the same SpecificCharacterSet and the same name bytes as real Orthanc, for a UTF-8 and a Latin-1 file."""
    from orthanc_lite.dicom.values import ENCODINGS as ALL_ENCODINGS

    files = [testdata("Encodings", "Lena-utf8.dcm").read_bytes(), testdata("Encodings", "Lena-latin1.dcm").read_bytes()]
    keys = ["QueryRetrieveLevel=STUDY", "PatientID", "SpecificCharacterSet", "PatientName", "StudyDescription"]
    theirs: dict[str, list[dict[str, bytes]]] = {}
    with start_orthanc(tmp_path / "orthanc", {"DicomAlwaysAllowFind": True}) as peer:
        for data in files:
            requests.post(peer.url + "/instances", data=data, timeout=30).raise_for_status()
        for name in ALL_ENCODINGS:
            assert requests.put(peer.url + "/tools/default-encoding", data=name, timeout=30).text == name
            theirs[name] = await findscu(peer.dicom_port, keys, tmp_path / f"orthanc-{name}")
    async with orthanc_lite.serve(settings.replace(DicomAlwaysAllowFind=True), host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        for data in files:
            async with http.post("/instances", data=data) as resp:
                assert resp.status == 200
        for name in ALL_ENCODINGS:
            await _put_encoding(http, name)
            ours = await findscu(srv.dicom_port, keys, tmp_path / f"lite-{name}")
            key = lambda a: a.get("PatientID", b"")  # noqa: E731
            assert sorted(ours, key=key) == sorted(theirs[name], key=key), name
