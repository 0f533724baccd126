"""The tags routes over real HTTP: /tags, /simplified-tags, /header, /content, /pdf, /frames, shared-tags,
module, module-patient and instances-tags, checked on every file of ../shared/testdata, against answers
recorded from Orthanc 1.10.1 (tests/data/orthanc_expected) and, when it is installed, against a live Orthanc.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import pathlib
import threading
from typing import Any

import aiohttp
import orjson
import pydicom
import pytest
from pydicom.uid import generate_uid

import orthanc_lite
from orthanc_lite.config import Settings
from orthanc_lite.dicom.dicom_json import simplify_json
from orthanc_lite.services import tags as svc
from tests.conftest import TESTDATA, all_testdata_files, testdata, upload
from tests.data.make_samples import make_instance, make_series
from tests.e2e.orthanc_peer import ServerProcess, orthanc_peer  # noqa: F401  (fixture)

EXPECTED = pathlib.Path(__file__).resolve().parents[1] / "data" / "orthanc_expected"
PDF_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.104.1"
# Orthanc 1.10.1 decodes ISO 2022 IR 13 + IR 87 with Shift-JIS only (mojibake); we decode the escapes
# (the same accepted deviation as tests/unit/test_dicom_json.py).
SCSH32_NAME = "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう"


def _expected(name: str) -> Any:
    return json.loads((EXPECTED / name).read_text(encoding="utf-8"))


def _strip_private_names(node: Any) -> Any:
    """Private tag names come from pydicom's private dictionary, Orthanc's from DCMTK's: not compared."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            value = _strip_private_names(value)
            if isinstance(value, dict) and "PrivateCreator" in value:
                value = {k: v for k, v in value.items() if k != "Name"}
            out[key] = value
        return out
    if isinstance(node, list):
        return [_strip_private_names(v) for v in node]
    return node


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, str, bytes]:
    async with http.get(url) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def _json(http: aiohttp.ClientSession, url: str, status: int = 200) -> Any:
    code, kind, body = await _get(http, url)
    assert code == status, (url, code, body[:300])
    assert kind == "application/json; charset=utf-8", (url, kind)
    return json.loads(body)


async def _post(http: aiohttp.ClientSession, data: bytes) -> dict[str, str]:
    async with http.post("/instances", data=data) as resp:
        assert resp.status == 200, await resp.text()
        answer: dict[str, str] = await resp.json()
        return answer


def _relative(path: pathlib.Path) -> str:
    return str(path.relative_to(TESTDATA))


async def _upload_all(http: aiohttp.ClientSession) -> dict[str, dict[str, str]]:
    uploaded: dict[str, dict[str, str]] = {}
    for path in all_testdata_files():
        if path.suffix == ".png" or path.name == "Issue196.dcm":  # not DICOM / rejected by Orthanc too
            continue
        uploaded[_relative(path)] = await upload(http, path)
    return uploaded


def _with_extra(data: bytes, **elements: tuple[str, object]) -> bytes:
    """A copy of a DICOM file with raw elements added ({hex tag: (VR, value)}); pydicom does not validate them."""
    ds = pydicom.dcmread(io.BytesIO(data))
    for tag, (vr, value) in elements.items():
        ds.add_new(int(tag, 16), vr, value)
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


# ------------------------------------------------------------------------------------------ every file

async def test_every_testdata_file(http: aiohttp.ClientSession) -> None:
    uploaded = await _upload_all(http)
    recorded = _expected("tags.json")
    names = _expected("patient_names.json")
    content = _expected("content.json")
    for path, answer in uploaded.items():
        base = f"/instances/{answer['ID']}"
        full = await _json(http, f"{base}/tags")
        assert full and all(node["Type"] in {"String", "Sequence", "Null", "Binary", "TooLong"}
                            for node in full.values()), path
        assert await _json(http, f"{base}/tags?short") == simplify_json(full, "short"), path
        human = simplify_json(full, "human")
        assert await _json(http, f"{base}/tags?simplify") == human, path
        assert await _json(http, f"{base}/simplified-tags") == human, path
        header = await _json(http, f"{base}/header")
        assert await _json(http, f"{base}/header?short") == simplify_json(header, "short"), path
        root = await _json(http, f"{base}/content")
        assert root and all(len(tag) == 9 and tag[4] == "-" for tag in root), path
        frames = await _json(http, f"{base}/frames")
        assert frames == list(range(len(frames))), path
        module = await _json(http, f"{base}/module")
        assert module == {key: node for key, node in full.items() if key in module}, path
        status, _, body = await _get(http, f"{base}/pdf")
        assert (status == 200) == (full.get("0008,0016", {}).get("Value") == PDF_SOP_CLASS), path
        if path in recorded:
            expected = recorded[path]
            if "full" in expected:
                assert _strip_private_names(full) == _strip_private_names(expected["full"]), path
                assert await _json(http, f"{base}/tags?short") == expected["short"], path
            if "header" in expected:
                assert header == expected["header"], path
        if path in names:
            got = human["PatientName"]
            assert got == (SCSH32_NAME if path.endswith("SCSH32") else names[path]), path
        for query, value in content.get(path, {}).items():
            status, kind, body = await _get(http, f"{base}/content/{query}")
            assert status == 200, (path, query)
            if isinstance(value, list):
                assert json.loads(body) == value, (path, query)
            elif "base64" in value:
                assert (kind, body) == ("application/octet-stream", base64.b64decode(value["base64"])), (path, query)
            else:
                assert (len(body), hashlib.sha1(body).hexdigest()) == (value["size"], value["sha1"]), (path, query)


async def test_encodings_patient_names(http: aiohttp.ClientSession) -> None:
    """Every Encodings file shows its PatientName in UTF-8, as Orthanc converts it."""
    for path, expected in sorted(_expected("patient_names.json").items()):
        answer = await upload(http, testdata(path))
        tags = await _json(http, f"/instances/{answer['ID']}/simplified-tags")
        assert tags["PatientName"] == (SCSH32_NAME if path.endswith("SCSH32") else expected), path


async def test_xss_patient_name_stays_json_text(http: aiohttp.ClientSession) -> None:
    answer = await upload(http, testdata("2017-06-27-XSSInjection.dcm"))
    base = f"/instances/{answer['ID']}"
    status, kind, body = await _get(http, f"{base}/simplified-tags")
    assert status == 200 and kind == "application/json; charset=utf-8"
    name = json.loads(body)["PatientName"]
    assert "<script>" in name
    assert orjson.dumps(name) in body  # a JSON string, nothing else
    async with http.get(f"{base}/content/0010,0010") as resp:
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert (await resp.read()).rstrip(b" ").decode() == name
    for route in ("tags", "tags?simplify", "header", "content", "module", "frames", "pdf"):
        async with http.get(f"{base}/{route}") as resp:
            assert "html" not in resp.headers.get("Content-Type", ""), route
    parent = answer["ParentStudy"]
    for route in ("shared-tags?simplify", "instances-tags?simplify", "module-patient?simplify"):
        async with http.get(f"/studies/{parent}/{route}") as resp:
            assert resp.headers["Content-Type"] == "application/json; charset=utf-8", route
            assert "<script>" in (await resp.text()), route


# ------------------------------------------------------------------------------------------ instance routes

async def test_pdf_and_encapsulated_document(http: aiohttp.ClientSession) -> None:
    answer = await upload(http, testdata("sample-pdf.dcm"))
    base = f"/instances/{answer['ID']}"
    status, kind, raw = await _get(http, f"{base}/content/0042,0011")
    assert (status, kind) == (200, "application/octet-stream") and raw.startswith(b"%PDF")
    status, kind, pdf = await _get(http, f"{base}/pdf")
    assert (status, kind) == (200, "application/pdf")
    assert pdf.startswith(b"%PDF-") and pdf.rstrip(b"\r\n").endswith(b"%%EOF")
    assert raw == pdf or raw == pdf + b"\0"  # /content keeps the pad byte, /pdf drops it
    assert (await _get(http, f"{base}/content/EncapsulatedDocument"))[2] == raw
    ct = await upload(http, testdata("SignedCT.dcm"))
    assert await _get(http, f"/instances/{ct['ID']}/pdf") == (404, "", b"")
    # A PDF SOP class with another MIME type is not a PDF either
    other = _with_extra(make_instance("PDFX", SOPClassUID=PDF_SOP_CLASS),
                        **{"00420012": ("LO", "text/plain"), "00420011": ("OB", b"%PDF-1.4 fake")})
    answer = await _post(http, other)
    assert (await _get(http, f"/instances/{answer['ID']}/pdf"))[0] == 404


async def test_content_paths_and_errors(http: aiohttp.ClientSession) -> None:
    """ParsedDicomFile::SendPathValue, quirks included (checked against Orthanc 1.10.1)."""
    ct = f"/instances/{(await upload(http, testdata('SignedCT.dcm')))['ID']}/content"
    lena = f"/instances/{(await upload(http, testdata('LenaTwiceWithFragments.dcm')))['ID']}/content"
    items = await _json(http, f"{ct}/0008-1140/0")
    assert items == ["0008-1150", "0008-1155"]
    for spelling in ("0008,1140/0", "0008%2C1140/0", "00081140/0", "ReferencedImageSequence/0", "0008-1140/+0",
                     "0008-1140/-1", "0008-1140/0/", "0008-1140//0"):
        assert await _json(http, f"{ct}/{spelling}") == items, spelling  # -1 is DCMTK's "last item"
    assert await _json(http, f"{ct}/0008-1140") == ["0"]
    assert await _json(http, f"{ct}/") == await _json(http, ct)
    name = await _get(http, f"{ct}/PatientName")
    assert name == (200, "application/octet-stream", b"Anonymized84")
    assert await _get(http, f"{ct}/0010-0010") == name
    for missing in ("9999-9999", "0008-0018/0", "0008-1140/5", "0008-1140/-2", "0008-1140/abc",
                    "0008-1140/abc/Foo", "0008-1140/0/0008-1155/1", "0008-0018/0/0008-0018", "RETIRED_DataSetType",
                    "9999-9999/0/Foo"):
        assert await _get(http, f"{ct}/{missing}") == (404, "", b""), missing
    for bad in ("Foo", "patientname", "xx-yy", "0010.0010", "0008-1140/0/Foo", "Foo/0/0010-0010"):
        error = await _json(http, f"{ct}/{bad}", 500)
        assert (error["OrthancStatus"], error["Message"]) == (27, "Unknown DICOM tag"), bad
    fragments = await _json(http, f"{lena}/7fe0-0010")
    assert fragments[:3] == ["0", "1", "2"]
    first = await _get(http, f"{lena}/7fe0-0010/1")
    assert first[0] == 200 and first[2].startswith(b"\xff\xd8")
    assert await _get(http, f"{lena}/PixelData/+1") == first
    for missing in ("7fe0-0010/-1", "7fe0-0010/x", "7fe0-0010/0/1", f"7fe0-0010/{len(fragments)}"):
        assert (await _get(http, f"{lena}/{missing}"))[0] == 404, missing
    assert (await _json(http, "/instances/unknown/content", 404))["OrthancStatus"] == 17


async def test_format_flags_and_ignore_length(http: aiohttp.ClientSession) -> None:
    long_text = "x" * 300
    data = make_instance("FLAGS", ImageComments=long_text, StudyDescription="y" * 256)
    base = f"/instances/{(await _post(http, data))['ID']}"
    full = await _json(http, f"{base}/tags")
    assert full["0020,4000"] == {"Name": "ImageComments", "Type": "TooLong", "Value": None}
    assert full["0008,1030"]["Type"] == "String"  # exactly 256 bytes
    short = simplify_json(full, "short")
    human = simplify_json(full, "human")
    # By presence only, ?simplify first, then ?short, then ?full
    for query, expected in (("short=false", short), ("short=foo", short), ("simplify=false", human),
                            ("short&simplify", human), ("full&short", short), ("full", full)):
        assert await _json(http, f"{base}/tags?{query}") == expected, query
    assert await _json(http, f"{base}/simplified-tags?short") == human
    for query in ("ignore-length=ImageComments", "ignore-length=00204000", "ignore-length=0020-4000,PatientID"):
        assert (await _json(http, f"{base}/tags?{query}"))["0020,4000"]["Value"] == long_text, query
    assert (await _json(http, f"{base}/simplified-tags?ignore-length=ImageComments"))["ImageComments"] == long_text
    assert (await _json(http, f"{base}/module?ignore-length=ImageComments&short")) == \
        {k: v for k, v in short.items() if k in ("0008,0005", "0008,0016", "0008,0018", "0020,0013")}
    for bad in ("ignore-length=", "ignore-length=0020,4000", "ignore-length=Nope"):
        error = await _json(http, f"{base}/tags?{bad}", 500)
        assert error["OrthancStatus"] == 27, bad
    assert (await _json(http, f"{base}/tags?whole=maybe", 400))["HttpStatus"] == 400


async def test_whole_reads_tags_after_the_pixel_data(http: aiohttp.ClientSession) -> None:
    """?whole (Orthanc 1.12.4): the tags stored after (7fe0,0010) are shown too."""
    base = f"/instances/{(await upload(http, testdata('PrivateTags.dcm')))['ID']}"
    plain = await _json(http, f"{base}/tags")
    whole = await _json(http, f"{base}/tags?whole")
    assert "7fe1,0010" not in plain and "7fe1,0010" in whole
    assert {k: v for k, v in whole.items() if k <= "7fe0,0010"} == plain
    assert "7fe1-0010" in await _json(http, f"{base}/content")
    assert await _json(http, f"{base}/tags?whole=false") == plain
    assert (await _json(http, f"{base}/simplified-tags?whole")).keys() >= simplify_json(plain, "human").keys()


async def test_header(http: aiohttp.ClientSession) -> None:
    base = f"/instances/{(await upload(http, testdata('SignedCT.dcm')))['ID']}"
    header = await _json(http, f"{base}/header")
    assert header == _expected("tags.json")["SignedCT.dcm"]["header"]
    assert await _json(http, f"{base}/header?simplify") == simplify_json(header, "human")
    assert all(key.startswith("0002,") for key in header)


async def test_frames(http: aiohttp.ClientSession) -> None:
    lena = await upload(http, testdata("LenaTwiceWithFragments.dcm"))
    assert await _json(http, f"/instances/{lena['ID']}/frames") == [0, 1]
    ct = await upload(http, testdata("SignedCT.dcm"))
    assert await _json(http, f"/instances/{ct['ID']}/frames") == [0]  # no NumberOfFrames: 1 frame
    for value, expected in (("0", []), ("3", [0, 1, 2]), ("+2", [0, 1]), ("2 ", [0, 1]), ("", [0])):
        data = _with_extra(make_instance("NF", sop_uid=generate_uid()), **{"00280008": ("LO", value)})
        answer = await _post(http, data)
        assert await _json(http, f"/instances/{answer['ID']}/frames") == expected, value
    for value in ("abc", " 2", "2\\3", "-1", "1.5"):
        data = _with_extra(make_instance("NF", sop_uid=generate_uid()), **{"00280008": ("LO", value)})
        answer = await _post(http, data)
        error = await _json(http, f"/instances/{answer['ID']}/frames", 400)
        assert error["OrthancStatus"] == 15, value


async def test_unknown_instance(http: aiohttp.ClientSession) -> None:
    series = (await _post(http, make_instance("UNK")))["ParentSeries"]
    for route in ("tags", "simplified-tags", "header", "content", "pdf", "frames", "module"):
        for public_id in ("0123abcd-00000000-00000000-00000000-00000000", "not-an-id", series):
            error = await _json(http, f"/instances/{public_id}/{route}", 404)
            assert error["OrthancStatus"] == 17, (route, public_id)


# ------------------------------------------------------------------------------------------ level routes

async def test_shared_tags_module_and_instances_tags(http: aiohttp.ClientSession) -> None:
    # Patient MODPAT: study 1 (series A: A1, A2; series B: B1), study 2 (series C: C1), then A3 in series A
    study1, study2 = generate_uid(), generate_uid()
    a, b, c = generate_uid(), generate_uid(), generate_uid()
    answers = {}
    for label, study, series in (("A1", study1, a), ("A2", study1, a), ("B1", study1, b), ("C1", study2, c),
                                 ("A3", study1, a)):
        data = make_instance("MODPAT", study_uid=study, series_uid=series, SeriesDescription=label,
                             StudyDescription=label, PatientComments=label, ImageComments=label,
                             InstanceNumber=int(label[1]))
        answers[label] = await _post(http, data)
    patient, study, series = answers["A1"]["ParentPatient"], answers["A1"]["ParentStudy"], answers["A1"]["ParentSeries"]

    # module: from instances.front() of Orthanc's GetChildInstances (newest study, series, instance)
    assert (await _json(http, f"/patients/{patient}/module"))["0010,4000"]["Value"] == "C1"
    assert (await _json(http, f"/studies/{study}/module"))["0008,1030"]["Value"] == "B1"
    assert (await _json(http, f"/studies/{study}/module-patient"))["0010,4000"]["Value"] == "B1"
    assert (await _json(http, f"/series/{series}/module?short"))["0008,103e"] == "A3"
    series_module = await _json(http, f"/series/{series}/module")
    assert set(series_module) <= {svc.tag_key(t) for t in svc.MODULE_TAGS["series"]}
    instance = await _json(http, f"/instances/{answers['A2']['ID']}/module?simplify")
    assert instance["SOPInstanceUID"] and "PatientName" not in instance and instance["InstanceNumber"] == "2"

    # shared-tags: String tags equal everywhere
    shared = await _json(http, f"/series/{series}/shared-tags")
    assert "0008,103e" not in shared and "0008,0018" not in shared and "0020,0013" not in shared and "7fe0,0010" not in shared
    assert shared["0010,0010"]["Value"] == "Doe^John"
    assert all(node["Type"] == "String" for node in shared.values())
    patient_shared = await _json(http, f"/patients/{patient}/shared-tags?simplify")
    assert patient_shared["PatientID"] == "MODPAT" and "StudyInstanceUID" not in patient_shared
    assert "SeriesDescription" not in patient_shared
    single = await _json(http, f"/series/{answers['C1']['ParentSeries']}/shared-tags?short")
    tags_c1 = await _json(http, f"/instances/{answers['C1']['ID']}/tags?short")
    full_c1 = await _json(http, f"/instances/{answers['C1']['ID']}/tags")
    assert single == {k: v for k, v in tags_c1.items() if full_c1[k]["Type"] == "String"}

    # instances-tags: {instanceId: tags}, one entry per child instance
    everything = await _json(http, f"/patients/{patient}/instances-tags")
    assert sorted(everything) == sorted(a["ID"] for a in answers.values())
    for label, answer in answers.items():
        assert everything[answer["ID"]] == await _json(http, f"/instances/{answer['ID']}/tags"), label
    simplified = await _json(http, f"/series/{series}/instances-tags?simplify")
    assert {tags["ImageComments"] for tags in simplified.values()} == {"A1", "A2", "A3"}
    short = await _json(http, f"/studies/{study}/instances-tags?short")
    assert len(short) == 4 and all("0010,0010" in tags for tags in short.values())

    # Like Orthanc (GetChildInstances), these routes do not check the level of the ID
    assert await _json(http, f"/patients/{series}/shared-tags") == shared
    assert (await _json(http, f"/series/{answers['A2']['ID']}/module?short"))["0008,103e"] == "A2"
    assert list(await _json(http, f"/studies/{answers['B1']['ID']}/instances-tags")) == [answers["B1"]["ID"]]
    for route in ("shared-tags", "module", "instances-tags"):
        assert (await _json(http, f"/patients/unknown/{route}", 404))["OrthancStatus"] == 17, route
    for missing in (f"/instances/{answers['A1']['ID']}/module-patient", f"/series/{series}/module-patient",
                    f"/instances/{answers['A1']['ID']}/shared-tags"):
        assert (await _get(http, missing))[0] == 404, missing


async def test_instances_tags_streams_in_bounded_batches(http: aiohttp.ClientSession,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    series = make_series(11, patient_id="BATCH")
    for data in series:
        answer = await _post(http, data)
    monkeypatch.setattr(svc, "BATCH_SIZE", 3)
    in_flight = peak = 0
    real_load = svc.load

    async def counting_load(*args: Any, **kwargs: Any) -> svc.LoadedDataset:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.001)
            return await real_load(*args, **kwargs)
        finally:
            in_flight -= 1

    monkeypatch.setattr(svc, "load", counting_load)
    status, kind, body = await _get(http, f"/series/{answer['ParentSeries']}/instances-tags?short")
    assert status == 200 and kind == "application/json; charset=utf-8"
    parsed = json.loads(body)
    assert len(parsed) == 11 and peak == 3
    # Streamed chunk by chunk, yet byte for byte what json_response would send for the whole object
    assert body == orjson.dumps(parsed, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    status, _, body = await _get(http, f"/series/{answer['ParentSeries']}/shared-tags?short")
    assert json.loads(body)["0010,0020"] == "BATCH" and peak == 3


# ------------------------------------------------------------------------------------------ off-loop, cache

async def test_parsing_runs_off_the_loop(http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = await upload(http, testdata("SignedCT.dcm"))
    real = pydicom.dcmread
    threads: list[str] = []

    def guarded(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", guarded)
    base = f"/instances/{answer['ID']}"
    for route in ("tags", "header", "content/7fe0-0010", "frames", "pdf", "module"):
        assert (await _get(http, f"{base}/{route}"))[0] in (200, 404), route
    await _json(http, f"/studies/{answer['ParentStudy']}/instances-tags")
    await _json(http, f"/studies/{answer['ParentStudy']}/shared-tags")
    assert threads and all(name.startswith("cpu") for name in threads), threads


async def test_dataset_cache_is_used_and_bounded(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    cache = svc.dataset_cache(server.context)
    answer = await upload(http, testdata("SignedCT.dcm"))
    await _json(http, f"/instances/{answer['ID']}/tags")
    assert len(cache) == 1
    await _json(http, f"/instances/{answer['ID']}/simplified-tags")
    await _json(http, f"/instances/{answer['ID']}/frames")
    assert len(cache) == 1  # the same parse answered all three
    await _get(http, f"/instances/{answer['ID']}/content/7fe0-0010/0")
    assert len(cache) == 2  # the whole file, pixel data included
    for data in make_series(svc.CACHE_ENTRIES + 5, patient_id="CACHE"):
        await _json(http, f"/instances/{(await _post(http, data))['ID']}/tags")
    assert len(cache) == svc.CACHE_ENTRIES and cache.size <= svc.CACHE_BYTES


def _loaded(size: int, whole: bool = False) -> svc.LoadedDataset:
    return svc.LoadedDataset(pydicom.Dataset(), whole, False, size)


def test_dataset_cache_bounds() -> None:
    cache = svc.DatasetCache(max_entries=3, max_bytes=1000)
    for i in range(5):
        cache.put(f"u{i}", "Latin1", _loaded(100))
    assert len(cache) == 3 and cache.get("u0", "Latin1", False) is None and cache.get("u4", "Latin1", False)
    assert cache.get("u4", "Utf8", False) is None  # another DefaultEncoding decodes differently
    cache.put("big", "Latin1", _loaded(400))  # over a quarter of the budget: never cached
    assert cache.get("big", "Latin1", False) is None
    whole = _loaded(240, whole=True)
    cache.put("w", "Latin1", whole)
    assert cache.get("w", "Latin1", False) is whole and cache.get("w", "Latin1", True) is whole
    assert cache.get("u4", "Latin1", True) is None  # a prefix cannot answer for the whole file
    for i in range(4):
        cache.put(f"v{i}", "Latin1", _loaded(240))
    assert cache.size <= 1000 and len(cache) <= 3


async def test_default_encoding_change_is_honoured(http: aiohttp.ClientSession) -> None:
    # PatientName as Latin-1 bytes, without a SpecificCharacterSet
    ds = pydicom.dcmread(io.BytesIO(make_instance("ENC")))
    del ds.SpecificCharacterSet
    ds.add_new(0x00100010, "PN", b"Caf\xe9")
    out = io.BytesIO()
    ds.save_as(out)
    base = f"/instances/{(await _post(http, out.getvalue()))['ID']}"
    assert (await _json(http, f"{base}/simplified-tags"))["PatientName"] == "Café"
    async with http.put("/tools/default-encoding", data="Cyrillic") as resp:
        assert resp.status == 200
    assert (await _json(http, f"{base}/simplified-tags"))["PatientName"] == "Cafщ"


async def test_user_dictionary(settings: Settings) -> None:
    """The "Dictionary" option names private tags; "gggg,00ee" matches any block of its creator (DCMTK)."""
    custom = settings.replace(Dictionary={"0009,1001": ["LO", "MyPrivateName", 1, 1, "MyCreator"],
                                          "0011,0002": ["DS", "MyFlexible", 1, 1, "MyCreator"],
                                          "0013,1003": ["LO", "NoCreatorTag", 1, 1]})
    ds = pydicom.Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "PRIV", generate_uid(), generate_uid()
    for tag, vr, value in ((0x00090010, "LO", "MyCreator"), (0x00091001, "LO", "hello"),
                           (0x00110011, "LO", "MyCreator"), (0x00111102, "DS", "3.5"),
                           (0x00131003, "LO", "nocreator"), (0x00190010, "LO", "OtherCreator"),
                           (0x00191001, "LO", "other")):
        ds.add_new(tag, vr, value)
    out = io.BytesIO()
    ds.save_as(out, implicit_vr=True, little_endian=True)  # implicit VR: the dictionary gives the VR
    async with orthanc_lite.serve(custom, host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        base = f"/instances/{(await _post(http, out.getvalue()))['ID']}"
        tags = await _json(http, f"{base}/tags")
        assert tags["0009,1001"] == {"Name": "MyPrivateName", "PrivateCreator": "MyCreator",
                                     "Type": "String", "Value": "hello"}
        assert tags["0011,1102"] == {"Name": "MyFlexible", "PrivateCreator": "MyCreator",
                                     "Type": "String", "Value": "3.5"}
        assert tags["0013,1003"] == {"Name": "NoCreatorTag", "Type": "String", "Value": "nocreator"}
        assert tags["0019,1001"]["Type"] == "Null"  # another creator: unknown, binary
        assert (await _get(http, f"{base}/content/MyPrivateName"))[2] == b"hello "
        assert (await _json(http, f"{base}/simplified-tags?ignore-length=MyFlexible"))["MyFlexible"] == "3.5"


# ------------------------------------------------------------------------------------------ live Orthanc

COMPARED_FILES = ("SignedCT.dcm", "sample-pdf.dcm", "PrivateTags.dcm", "LenaTwiceWithFragments.dcm",
                  "Series/Lena-1.dcm", "Series/Lena-2.dcm", "Series/Lena-3.dcm", "MarekLatin2.dcm",
                  "HierarchicalAnonymization/RTH/CT01.dcm", "HierarchicalAnonymization/RTH/RT.dcm",
                  "TransferSyntaxes/1.2.840.10008.1.2.2.dcm", "2017-06-27-XSSInjection.dcm", "Issue195.dcm")
INSTANCE_ROUTES = ("tags", "tags?short", "simplified-tags", "header", "header?short", "content", "frames", "pdf",
                   "module", "tags?ignore-length=PatientName,00081030", "content/0008-1140/-1",
                   "content/7fe0-0010/1", "content/Foo", "content/0008-0018/0")
LEVEL_ROUTES = ("shared-tags", "shared-tags?short", "module", "module?short", "instances-tags",
                "instances-tags?short")


def _comparable(status: int, kind: str, body: bytes) -> Any:
    if status >= 400:  # Orthanc sends its error JSON without a Content-Type
        return status, json.loads(body)["OrthancStatus"] if body else None
    if kind.startswith("application/json"):
        return status, _strip_private_names(json.loads(body))
    return status, kind.split(";")[0], hashlib.sha1(body).hexdigest()


@pytest.mark.orthanc
async def test_same_answers_as_orthanc(http: aiohttp.ClientSession, orthanc_peer: ServerProcess) -> None:  # noqa: F811
    """Field by field against a live Orthanc (1.10.1 on Debian 12), on a representative set of files."""
    async with aiohttp.ClientSession(base_url=orthanc_peer.url) as real:
        levels: set[tuple[str, str]] = set()
        for name in COMPARED_FILES:
            data = testdata(name).read_bytes()
            async with real.post("/instances", data=data) as resp:
                assert resp.status == 200
                theirs = await resp.json()
            ours = await upload(http, testdata(name))
            assert ours["ID"] == theirs["ID"]
            for route in INSTANCE_ROUTES:
                url = f"/instances/{ours['ID']}/{route}"
                assert _comparable(*await _get(http, url)) == _comparable(*await _get(real, url)), (name, route)
            levels |= {("patients", ours["ParentPatient"]), ("studies", ours["ParentStudy"]),
                       ("series", ours["ParentSeries"])}
        for level, public_id in sorted(levels):
            routes = LEVEL_ROUTES + (("module-patient",) if level == "studies" else ())
            for route in routes:
                url = f"/{level}/{public_id}/{route}"
                assert _comparable(*await _get(http, url)) == _comparable(*await _get(real, url)), url


async def test_missing_file_in_storage(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    """A file gone from the storage area: 404 InexistentFile for one instance; level-wide routes skip it,
    as Orthanc's shared-tags does for instances deleted while it reads them."""
    first, second = make_series(2, patient_id="GONE")
    kept = await _post(http, first)
    gone = await _post(http, second)
    ctx = server.context
    internal, _ = await svc.resource_level(ctx, gone["ID"])
    uuid = (await ctx.index.attachments_of(internal))[1].uuid
    path = ctx.storage.local_path(uuid)
    assert path is not None
    await ctx.executors.run_io(pathlib.Path(path).unlink)
    assert (await _json(http, f"/instances/{gone['ID']}/tags", 404))["OrthancStatus"] == 13
    assert list(await _json(http, f"/series/{kept['ParentSeries']}/instances-tags")) == [kept["ID"]]
    shared = await _json(http, f"/series/{kept['ParentSeries']}/shared-tags?short")
    assert shared["0008,0018"] == (await _json(http, f"/instances/{kept['ID']}/tags?short"))["0008,0018"]
