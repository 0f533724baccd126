"""ZIP archives and DICOMDIR media over real HTTP: Orthanc 1.13's folder layout, DICOMDIR records readable by
pydicom and dcmdump, the POST/GET variants and their errors, and name sanitization."""

from __future__ import annotations

import asyncio
import io
import pathlib
import shutil
import subprocess
import zipfile

import aiohttp
import pytest
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from tests.conftest import upload
from tests.data.make_samples import make_instance


async def _post_bytes(http: aiohttp.ClientSession, data: bytes) -> dict:
    async with http.post("/instances", data=data) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _zip(http: aiohttp.ClientSession, url: str, method: str = "GET", **kw: object) -> tuple[zipfile.ZipFile, aiohttp.ClientResponse]:
    async with http.request(method, url, **kw) as resp:
        body = await resp.read()
        assert resp.status == 200, body[:500]
        assert resp.headers["Content-Type"] == "application/zip"
        return zipfile.ZipFile(io.BytesIO(body)), resp


async def _knee_like_study(http: aiohttp.ClientSession) -> tuple[str, dict[str, bytes]]:
    """Two series of one study, InstanceNumbers 1 and 3 (as the suite's KNEE study), plus a second file."""
    study = generate_uid()
    s1, s2 = generate_uid(), generate_uid()
    files = {
        "a": make_instance("887", "KNEE", study_uid=study, series_uid=s1, instance_number=1, AccessionNumber="A10003245599",
                           StudyDescription="IRM DU GENOU", Modality="MR", SeriesNumber=301, SeriesDescription="T1W_aTSE"),
        "b": make_instance("887", "KNEE", study_uid=study, series_uid=s2, instance_number=3, AccessionNumber="A10003245599",
                           StudyDescription="IRM DU GENOU", Modality="MR", SeriesNumber=601, SeriesDescription="T2W_TSE"),
    }
    answers = {k: await _post_bytes(http, v) for k, v in files.items()}
    return answers["a"]["ParentStudy"], files


async def test_study_archive_layout_and_content(http: aiohttp.ClientSession) -> None:
    study_id, files = await _knee_like_study(http)
    z, resp = await _zip(http, f"/studies/{study_id}/archive")
    assert resp.headers["Content-Disposition"] == f'filename="{study_id}.zip"'
    assert sorted(z.namelist()) == [
        "887 - KNEE/A10003245599 - IRM DU GENOU/301 - MR - T1W_aTSE/MR000001.dcm",
        "887 - KNEE/A10003245599 - IRM DU GENOU/601 - MR - T2W_TSE/MR000003.dcm",
    ]
    assert z.read("887 - KNEE/A10003245599 - IRM DU GENOU/301 - MR - T1W_aTSE/MR000001.dcm") == files["a"]
    assert z.testzip() is None
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())


async def test_archive_of_patient_and_series_and_filename(http: aiohttp.ClientSession) -> None:
    study_id, _ = await _knee_like_study(http)
    async with http.get(f"/studies/{study_id}") as resp:
        study = await resp.json()
    z, _ = await _zip(http, f"/patients/{study['ParentPatient']}/archive")
    assert len(z.namelist()) == 2
    z, resp = await _zip(http, f"/series/{study['Series'][0]}/archive?filename=my.zip")
    assert resp.headers["Content-Disposition"] == 'filename="my.zip"'
    assert len(z.namelist()) == 1 and z.namelist()[0].startswith("887 - KNEE/A10003245599 - IRM DU GENOU/")


async def test_numbering_falls_back_to_rank_when_instance_numbers_repeat(http: aiohttp.ClientSession) -> None:
    series, study = generate_uid(), generate_uid()
    for _ in range(3):
        await _post_bytes(http, make_instance("P9", "", study_uid=study, series_uid=series, instance_number=5,
                                              AccessionNumber="", StudyDescription="", SeriesDescription="",
                                              Modality="", SeriesNumber=None))
    async with http.get("/studies") as resp:
        (study_id,) = await resp.json()
    z, _ = await _zip(http, f"/studies/{study_id}/archive")
    assert sorted(z.namelist()) == [f"P9/Unknown Study/Unknown Series/{n:08d}.dcm" for n in (1, 2, 3)]


async def test_names_are_sanitized(http: aiohttp.ClientSession) -> None:
    answer = await _post_bytes(http, make_instance(
        "../../etc", "Evil/..\\x^Name", AccessionNumber="..", StudyDescription="a:b*c?<d>|\x01e",
        SeriesDescription="/abs/path", Modality="c/", SeriesNumber=2))
    z, _ = await _zip(http, f"/studies/{answer['ParentStudy']}/archive")
    (name,) = z.namelist()
    parts = name.split("/")
    assert parts == ["etc - Evil .. x Name", "abcde", "2 - c - abs path", "C0000001.dcm"]
    for part in parts:
        assert part and part not in (".", "..") and not part.startswith((".", "/")) and "\\" not in part


async def test_media_dicomdir_is_read_by_pydicom_and_dcmdump(http: aiohttp.ClientSession, tmp_path: pathlib.Path) -> None:
    study_id, files = await _knee_like_study(http)
    z, _ = await _zip(http, f"/studies/{study_id}/media")
    assert sorted(z.namelist()) == ["DICOMDIR", "IMAGES/IM0", "IMAGES/IM1"]
    z.extractall(tmp_path)
    fs = FileSet(tmp_path / "DICOMDIR")
    assert fs.ID == "ORTHANC_MEDIA"
    found = {pathlib.Path(inst.path).name: inst for inst in fs}
    assert set(found) == {"IM0", "IM1"}
    assert {(tmp_path / "IMAGES" / n).read_bytes() for n in ("IM0", "IM1")} == set(files.values())
    patient = fs.find(PatientID="887")
    assert len(patient) == 2
    record = found["IM0"].node
    assert record.record_type == "IMAGE"
    assert record.parent.record_type == "SERIES" and "SeriesDescription" not in record.parent._record
    assert record.parent.parent.record_type == "STUDY"
    assert record.parent.parent._record.AccessionNumber == "A10003245599"
    if shutil.which("dcmdump"):
        out = subprocess.run(["dcmdump", str(tmp_path / "DICOMDIR")], capture_output=True, text=True, check=True).stdout
        assert 'refFileID="IMAGES\\IM1"' in out and "PATIENT" in out and "(0020,0011) IS [601]" in out


async def test_media_extended(http: aiohttp.ClientSession, tmp_path: pathlib.Path) -> None:
    study_id, _ = await _knee_like_study(http)
    for url in (f"/studies/{study_id}/media?extended", "/tools/create-media-extended"):
        if url.startswith("/tools"):
            z, _ = await _zip(http, url, "POST", json={"Resources": [study_id]})
        else:
            z, _ = await _zip(http, url)
        target = tmp_path / url.replace("/", "_").replace("?", "_")
        z.extractall(target)
        series = [node for node in FileSet(target / "DICOMDIR")._tree.children[0].children[0].children]
        assert sorted(str(s._record.SeriesDescription) for s in series) == ["T1W_aTSE", "T2W_TSE"]


async def test_create_archive_variants(http: aiohttp.ClientSession) -> None:
    study_id, _ = await _knee_like_study(http)
    other = await _post_bytes(http, make_instance("P2", "Other^One"))
    ids = [study_id, other["ID"]]
    z1, resp = await _zip(http, "/tools/create-archive", "POST", json={"Resources": ids})
    assert resp.headers["Content-Disposition"] == 'filename="Archive.zip"'
    z2, _ = await _zip(http, "/tools/create-archive", "POST", json=ids)
    z3, _ = await _zip(http, f"/tools/create-archive?resources={','.join(ids)}&filename=sel.zip")
    assert sorted(z1.namelist()) == sorted(z2.namelist()) == sorted(z3.namelist())
    assert len(z1.namelist()) == 3 and any(n.startswith("P2 - Other One/") for n in z1.namelist())
    z4, _ = await _zip(http, "/tools/create-media", "POST", json={"Resources": ids, "Synchronous": True})
    assert sorted(z4.namelist()) == ["DICOMDIR", "IMAGES/IM0", "IMAGES/IM1", "IMAGES/IM2"]
    z5, _ = await _zip(http, f"/tools/create-media?resources={other['ID']}")
    assert sorted(z5.namelist()) == ["DICOMDIR", "IMAGES/IM0"]


@pytest.mark.parametrize(("body", "status", "details"), [
    (b'{"Resources": "x"}', 400, "Expected a list of strings (Orthanc identifiers)"),
    (b"[1]", 400, "Expected a list of strings (Orthanc identifiers)"),
    (b"{}", 400, "Missing field Resources in the JSON body"),
    (b"", 400, "Expected a list of resources to archive in the body"),
    (b'{"Resources": [], "Transcode": "bad"}', 400, "Unknown transfer syntax: bad"),
    (b'{"Resources": ["0000"]}', 404, None),
])
async def test_create_archive_errors(http: aiohttp.ClientSession, body: bytes, status: int, details: str | None) -> None:
    async with http.post("/tools/create-archive", data=body) as resp:
        assert resp.status == status
        answer = await resp.json()
    assert answer["HttpStatus"] == status
    if details:
        assert answer["Details"] == details


async def test_unknown_resource_and_bad_transcode(http: aiohttp.ClientSession) -> None:
    async with http.get("/studies/1234/archive") as resp:
        assert resp.status == 404
        assert (await resp.json())["OrthancError"] == "Unknown resource"
    answer = await _post_bytes(http, make_instance())
    async with http.get(f"/studies/{answer['ParentStudy']}/archive?transcode=1.2.3") as resp:
        assert resp.status == 400
    async with http.get(f"/instances/{answer['ID']}/archive") as resp:
        assert resp.status in (404, 405)  # Orthanc has no archive route at the instance level


async def test_real_files_roundtrip(http: aiohttp.ClientSession) -> None:
    from tests.conftest import testdata

    paths = sorted(testdata("Series").glob("*.dcm")) + [testdata("SignedCT.dcm"), testdata("sample-pdf.dcm")]
    for p in paths:
        await upload(http, p)
    async with http.get("/patients") as resp:
        patients = await resp.json()
    z, _ = await _zip(http, "/tools/create-archive", "POST", json=patients)
    contents = sorted(z.read(n) for n in z.namelist())
    assert contents == sorted(p.read_bytes() for p in paths)
    assert "Unknown Patient/Unknown Study/Unknown Series/00000001.dcm" in z.namelist()


async def test_transcode(http: aiohttp.ClientSession) -> None:
    """?transcode / "Transcode" rewrite the files (here JPEG baseline -> explicit little endian); the DICOMDIR
    then names the new transfer syntax."""
    from pydicom import dcmread

    from tests.conftest import testdata

    for p in sorted(testdata("Series").glob("*.dcm"))[:2]:
        answer = await upload(http, p)
    target = "1.2.840.10008.1.2.1"
    z, _ = await _zip(http, f"/series/{answer['ParentSeries']}/archive?transcode={target}")
    assert {str(dcmread(io.BytesIO(z.read(n))).file_meta.TransferSyntaxUID) for n in z.namelist()} == {target}
    z, _ = await _zip(http, f"/series/{answer['ParentSeries']}/media", "POST", json={"Transcode": target})
    dicomdir = dcmread(io.BytesIO(z.read("DICOMDIR")))
    images = [r for r in dicomdir.DirectoryRecordSequence if r.DirectoryRecordType == "IMAGE"]
    assert {str(r.ReferencedTransferSyntaxUIDInFile) for r in images} == {target}


async def test_zip_use_utf8(settings) -> None:  # type: ignore[no-untyped-def]
    """ZipUseUtf8 keeps non-ASCII letters (and marks the names as UTF-8); by default they are dropped."""
    import orthanc_lite

    data = make_instance("Ü1", "Müller^Jürgen", StudyDescription="Épaule", SeriesDescription="Axial",
                         SeriesNumber=1, AccessionNumber="")
    for utf8, expected in ((True, "Ü1 - Müller Jürgen/Épaule/1 - CT - Axial/CT000001.dcm"),
                           (False, "1 - Mller Jrgen/paule/1 - CT - Axial/CT000001.dcm")):
        async with orthanc_lite.serve(settings.replace(ZipUseUtf8=utf8), host="127.0.0.1") as srv:
            async with aiohttp.ClientSession(base_url=srv.url) as http:
                answer = await _post_bytes(http, data)
                z, _ = await _zip(http, f"/studies/{answer['ParentStudy']}/archive")
        assert z.namelist() == [expected]
        assert bool(z.infolist()[0].flag_bits & 0x800) == utf8


async def test_content_disposition_is_sanitized(http: aiohttp.ClientSession) -> None:
    """As Orthanc >= 1.12.11: quotes and line breaks are removed from ?filename / "Filename" (no header injection)."""
    answer = await _post_bytes(http, make_instance())
    study = answer["ParentStudy"]
    async with http.get(f"/studies/{study}/archive", params={"filename": '"toto".zip'}) as resp:
        assert resp.headers["Content-Disposition"] == 'filename="toto.zip"'
    async with http.get(f"/studies/{study}/archive", params={"filename": 'toto.zip"\r\nSet-Cookie:evil=1'}) as resp:
        assert resp.headers["Content-Disposition"] == 'filename="toto.zipSet-Cookie:evil=1"'
        assert "Set-Cookie" not in resp.headers
    async with http.post(f"/studies/{study}/archive", json={"Asynchronous": True, "Filename": 'tot"o.zip'}) as resp:
        job = await resp.json()
    await asyncio.sleep(0)
    for _ in range(200):
        async with http.get(f"/jobs/{job['ID']}") as resp:
            if (await resp.json())["State"] == "Success":
                break
        await asyncio.sleep(0.02)
    async with http.get(f"/jobs/{job['ID']}/archive") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Disposition"] == 'filename="toto.zip"'


async def test_head_builds_nothing(server, http: aiohttp.ClientSession) -> None:  # type: ignore[no-untyped-def]
    from orthanc_lite.rest.archive import STREAMS_KEY

    answer = await _post_bytes(http, make_instance())
    async with http.head(f"/studies/{answer['ParentStudy']}/archive") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "application/zip"
    async with http.head("/studies/0000/archive") as resp:
        assert resp.status == 404
    assert not server.context.extra.get(STREAMS_KEY)


async def test_head_on_the_batch_routes_checks_resources_and_options(http: aiohttp.ClientSession) -> None:
    """HEAD answers the headers of the GET, and its errors: unknown resource (404), bad options (400)."""
    answer = await _post_bytes(http, make_instance())
    route = f"/tools/create-media?resources={answer['ParentStudy']},{answer['ID']}&filename=a.zip"
    async with http.head(route) as resp:
        assert resp.status == 200 and resp.headers["Content-Disposition"] == 'filename="a.zip"'
    async with http.head(f"/tools/create-archive?resources={answer['ID']},0000") as resp:
        assert resp.status == 404
    async with http.head(f"/series/{answer['ParentSeries']}/archive?transcode=1.2.3") as resp:
        assert resp.status == 400
    async with http.head(f"/series/{answer['ParentSeries']}/media?lossy-quality=0") as resp:
        assert resp.status == 400


async def test_utf8_body_field(http: aiohttp.ClientSession) -> None:
    """"Utf8" in a POST body overrides ZipUseUtf8 for that archive."""
    answer = await _post_bytes(http, make_instance("Ü2", "Jürgen", AccessionNumber="", StudyDescription="",
                                                   SeriesDescription="", SeriesNumber=None))
    z, _ = await _zip(http, "/tools/create-archive", "POST", json={"Resources": [answer["ID"]], "Utf8": True})
    assert z.namelist() == ["Ü2 - Jürgen/Unknown Study/CT/CT000001.dcm"]
    z, _ = await _zip(http, "/tools/create-archive", "POST", json={"Resources": [answer["ID"]]})
    assert z.namelist() == ["2 - Jrgen/Unknown Study/CT/CT000001.dcm"]


async def test_empty_selection_gives_an_empty_zip(http: aiohttp.ClientSession) -> None:
    z, _ = await _zip(http, "/tools/create-archive", "POST", json={"Resources": []})
    assert z.namelist() == []
    z, _ = await _zip(http, "/tools/create-media", "POST", json=[])
    assert z.namelist() == ["DICOMDIR"]


async def test_file_that_cannot_be_transcoded_is_kept(http: aiohttp.ClientSession) -> None:
    """As Orthanc: an instance the transcoder cannot handle (a PDF has no pixels) goes in as stored."""
    from tests.conftest import testdata

    pdf = testdata("sample-pdf.dcm")
    answer = await upload(http, pdf)
    z, _ = await _zip(http, f"/series/{answer['ParentSeries']}/archive?transcode=1.2.840.10008.1.2.4.50")
    (name,) = z.namelist()
    assert z.read(name) == pdf.read_bytes()
