"""The DICOMweb server over real HTTP: QIDO-RS, WADO-RS (retrieve, metadata, bulk), STOW-RS, WADO-URI, CORS."""

from __future__ import annotations

import aiohttp
import pytest
from pydicom.uid import generate_uid

import orthanc_lite
from orthanc_lite.config import Settings
from tests.conftest import testdata, upload
from tests.dicomweb.helpers import make_instance, read, split_multipart, stow_body

STUDY = "1.2.826.0.1.3680043.8.498.1"
SERIES = "1.2.826.0.1.3680043.8.498.1.1"
SERIES2 = "1.2.826.0.1.3680043.8.498.1.2"


async def post_instance(http: aiohttp.ClientSession, data: bytes) -> dict:
    async with http.post("/instances", data=data) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


@pytest.fixture
async def loaded(http: aiohttp.ClientSession) -> list[str]:
    """Three instances in two series of one study, and a second study."""
    sops = [generate_uid() for _ in range(3)]
    await post_instance(http, make_instance(STUDY, SERIES, sops[0], 1))
    await post_instance(http, make_instance(STUDY, SERIES, sops[1], 2, implicit=True))
    await post_instance(http, make_instance(STUDY, SERIES2, sops[2], 1, modality="MR"))
    await post_instance(http, make_instance("1.2.3.9", "1.2.3.9.1", None, 1, patient="P2", name="ROE^JANE",
                                            description="Chest"))
    return sops


def path_of(url: str) -> str:
    """The path of an absolute URL written by the server."""
    return "/" + url.split("//", 1)[1].split("/", 1)[1]


async def get_json(http: aiohttp.ClientSession, path: str, status: int = 200, **kw: object) -> object:
    async with http.get(path, **kw) as resp:  # type: ignore[arg-type]
        assert resp.status == status, await resp.text()
        if status == 200:
            assert resp.headers["Content-Type"] == "application/dicom+json"
        return await resp.json(content_type=None)


# --- QIDO-RS ---------------------------------------------------------------------------------------------

async def test_qido_studies_default_attributes_and_retrieve_url(http: aiohttp.ClientSession, loaded: list[str],
                                                                server: orthanc_lite.Server) -> None:
    studies = await get_json(http, "/dicom-web/studies?PatientID=P1")
    assert len(studies) == 1
    study = studies[0]
    assert study["0020000D"] == {"vr": "UI", "Value": [STUDY]}
    assert study["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "DOE^JOHN"}]}
    assert study["00201206"] == {"vr": "IS", "Value": [2]}
    assert study["00201208"] == {"vr": "IS", "Value": [3]}
    assert study["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}
    assert study["00080005"] == {"vr": "CS", "Value": ["ISO_IR 100"]}
    assert study["00080201"] == {"vr": "SH"}  # absent from the files: only its VR
    host = server.url.split("//")[1]
    assert study["00081190"] == {"vr": "UR", "Value": [f"http://{host}/dicom-web/studies/{STUDY}"]}
    assert list(study) == sorted(study)


async def test_qido_filters_limit_offset_and_lists(http: aiohttp.ClientSession, loaded: list[str]) -> None:
    assert len(await get_json(http, "/dicom-web/studies")) == 2
    assert len(await get_json(http, "/dicom-web/studies?00100010=ROE*")) == 1
    assert len(await get_json(http, "/dicom-web/studies?PatientName=roe*")) == 0  # QidoCaseSensitive
    assert len(await get_json(http, "/dicom-web/studies?PatientID=P1,P2")) == 2
    assert len(await get_json(http, "/dicom-web/studies?StudyDate=20240101-20240105")) == 2
    assert len(await get_json(http, "/dicom-web/studies?limit=1")) == 1
    assert len(await get_json(http, "/dicom-web/studies?limit=1&offset=1")) == 1
    assert await get_json(http, "/dicom-web/studies?offset=2") == []
    assert len(await get_json(http, "/dicom-web/studies?ModalitiesInStudy=MR")) == 1
    assert len(await get_json(http, "/dicom-web/studies?fuzzymatching=true")) == 2
    await get_json(http, "/dicom-web/studies?fuzzymatching=maybe", status=400)
    await get_json(http, "/dicom-web/studies?limit=abc", status=400)


async def test_qido_series_and_instances_paths(http: aiohttp.ClientSession, loaded: list[str]) -> None:
    series = await get_json(http, f"/dicom-web/studies/{STUDY}/series")
    assert sorted(s["0020000E"]["Value"][0] for s in series) == [SERIES, SERIES2]
    assert "00100010" in series[0]  # the study UID came from the path: the study attributes are added
    assert all(s["00201209"]["vr"] == "IS" for s in series)
    only = await get_json(http, f"/dicom-web/studies/{STUDY}/series?Modality=MR")
    assert [s["0020000E"]["Value"][0] for s in only] == [SERIES2]
    instances = await get_json(http, f"/dicom-web/studies/{STUDY}/series/{SERIES}/instances")
    assert sorted(i["00080018"]["Value"][0] for i in instances) == sorted(loaded[:2])
    first = instances[0]
    assert first["00280010"] == {"vr": "US", "Value": [4]}  # read from the file
    url = first["00081190"]["Value"][0]
    assert url.endswith(f"/dicom-web/studies/{STUDY}/series/{SERIES}/instances/{first['00080018']['Value'][0]}")
    everything = await get_json(http, "/dicom-web/instances")
    assert len(everything) == 4
    assert "0020000D" in everything[0] and "00080060" in everything[0]  # study and series attributes added
    included = await get_json(http, f"/dicom-web/studies/{STUDY}/instances?includefield=SliceThickness,00200032")
    assert included[0]["00180050"] == {"vr": "DS", "Value": [1.5]}
    assert included[0]["00200032"]["Value"][:2] == [0, 0]


async def test_qido_retrieve_url_behind_a_proxy(settings: Settings, tmp_path: object) -> None:
    section = dict(settings.DicomWeb)
    section["PublicRoot"] = "/public/dw/"
    async with orthanc_lite.serve(settings.replace(DicomWeb=section), host="127.0.0.1") as srv:
        async with aiohttp.ClientSession(base_url=srv.url) as http:
            await post_instance(http, make_instance(STUDY, SERIES))
            headers = {"X-Forwarded-Host": "viewer.example.org", "X-Forwarded-Proto": "https"}
            [study] = await get_json(http, "/dicom-web/studies", headers=headers)
            assert study["00081190"]["Value"] == [f"https://viewer.example.org/public/dw/studies/{STUDY}"]
            [study] = await get_json(http, "/dicom-web/studies", headers={"Forwarded": "host=h.org;proto=https"})
            assert study["00081190"]["Value"] == [f"https://h.org/public/dw/studies/{STUDY}"]


async def test_qido_xml(http: aiohttp.ClientSession, loaded: list[str]) -> None:
    async with http.get("/dicom-web/studies", headers={"Accept": "application/dicom+xml"}) as resp:
        assert resp.status == 200
        content_type = resp.headers["Content-Type"]
        assert content_type.startswith('multipart/related; type="application/dicom+xml"; boundary=')
        parts = split_multipart(content_type, await resp.read())
    assert len(parts) == 2
    import xml.etree.ElementTree as ET

    root = ET.fromstring(parts[0][1])
    ns = {"d": "http://dicom.nema.org/PS3.19/models/NativeDICOM"}
    uids = root.findall("d:DicomAttribute[@tag='0020000D']/d:Value", ns)
    assert uids and uids[0].text in (STUDY, "1.2.3.9")


# --- WADO-RS retrieve ------------------------------------------------------------------------------------------

async def test_retrieve_series_as_explicit_little_endian(http: aiohttp.ClientSession, loaded: list[str]) -> None:
    async with http.get(f"/dicom-web/studies/{STUDY}/series/{SERIES}") as resp:
        assert resp.status == 200
        content_type = resp.headers["Content-Type"]
        assert content_type.startswith('multipart/related; type="application/dicom"; boundary=')
        parts = split_multipart(content_type, await resp.read())
    assert len(parts) == 2
    syntaxes = set()
    for headers, payload in parts:
        assert headers["Content-Type"] == "application/dicom"
        ds = read(payload)
        syntaxes.add(str(ds.file_meta.TransferSyntaxUID))
        assert ds.PixelData == bytes(range(32))
        assert ds.PatientName == "DOE^JOHN"
    assert syntaxes == {"1.2.840.10008.1.2.1"}  # the implicit one was rewritten


async def test_retrieve_keeps_the_stored_syntax_with_star(http: aiohttp.ClientSession, loaded: list[str]) -> None:
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    async with http.get(f"/dicom-web/studies/{STUDY}/series/{SERIES}/instances/{loaded[1]}",
                        headers={"Accept": accept}) as resp:
        assert resp.status == 200
        [(_, payload)] = split_multipart(resp.headers["Content-Type"], await resp.read())
    assert str(read(payload).file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2"
    async with http.get(f"/dicom-web/studies/{STUDY}") as resp:
        assert len(split_multipart(resp.headers["Content-Type"], await resp.read())) == 3


async def test_retrieve_errors(http: aiohttp.ClientSession, loaded: list[str]) -> None:
    async with http.get(f"/dicom-web/studies/{STUDY}", headers={"Accept": "application/json"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["OrthancStatus"] == 8
    bad_type = 'multipart/related; type="image/png"'
    async with http.get(f"/dicom-web/studies/{STUDY}", headers={"Accept": bad_type}) as resp:
        assert resp.status == 400
    bad_syntax = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.3.4'
    async with http.get(f"/dicom-web/studies/{STUDY}", headers={"Accept": bad_syntax}) as resp:
        assert resp.status == 400
    async with http.get("/dicom-web/studies/1.2.3.4.5.6") as resp:
        assert resp.status == 404
    async with http.get(f"/dicom-web/studies/{STUDY}/series/{SERIES2}/instances/{loaded[0]}") as resp:
        assert resp.status == 404  # an instance of another series


# --- WADO-RS metadata -----------------------------------------------------------------------------------------

async def test_series_metadata_full_and_bulk(http: aiohttp.ClientSession, loaded: list[str],
                                             server: orthanc_lite.Server) -> None:
    items = await get_json(http, f"/dicom-web/studies/{STUDY}/series/{SERIES}/metadata")
    assert sorted(i["00080018"]["Value"][0] for i in items) == sorted(loaded[:2])
    item = items[0]
    sop = item["00080018"]["Value"][0]
    assert item["00280010"] == {"vr": "US", "Value": [4]}
    assert item["00200032"] == {"vr": "DS", "Value": [0, 0, item["00200013"]["Value"][0]]}
    assert item["00082218"]["vr"] == "SQ"
    assert item["00082218"]["Value"][0]["00080100"] == {"vr": "SH", "Value": ["T-A0100"]}
    bulk = item["7FE00010"]["BulkDataURI"]
    host = server.url.split("//")[1]
    assert bulk == f"http://{host}/dicom-web/studies/{STUDY}/series/{SERIES}/instances/{sop}/bulk/7fe00010"
    assert "00020010" not in item
    async with http.get(bulk.split(host)[1]) as resp:
        assert resp.status == 200
        [(headers, payload)] = split_multipart(resp.headers["Content-Type"], await resp.read())
    assert headers["Content-Type"] == "application/octet-stream"
    assert payload == bytes(range(32))


async def test_series_metadata_cache_is_warm_and_follows_changes(http: aiohttp.ClientSession, loaded: list[str],
                                                                 server: orthanc_lite.Server) -> None:
    from orthanc_lite.services.dicomweb import SERIES_METADATA_ATTACHMENT, metadata_cache

    ctx = server.context
    url = f"/dicom-web/studies/{STUDY}/series/{SERIES}/metadata"
    first = await get_json(http, url)
    cache = metadata_cache(ctx)
    computed = cache.computed
    assert await get_json(http, url) == first
    assert cache.computed == computed  # warm: nothing recomputed
    # The gzipped copy is a series attachment (4301), as the plugin keeps it
    [series] = [s for s in await (await http.get("/series?expand")).json()
                if s["MainDicomTags"]["SeriesInstanceUID"] == SERIES]
    async with http.get(f"/series/{series['ID']}/attachments") as resp:
        assert str(SERIES_METADATA_ATTACHMENT) in await resp.json()
    # A new instance makes the cache stale
    await post_instance(http, make_instance(STUDY, SERIES, None, 7))
    assert len(await get_json(http, url)) == 3
    assert cache.computed == computed + 1
    # A restart of the memory cache still reads the attachment
    cache._entries.clear()
    assert len(await get_json(http, url)) == 3
    assert cache.computed == computed + 1


async def test_study_and_instance_metadata(http: aiohttp.ClientSession, loaded: list[str]) -> None:
    items = await get_json(http, f"/dicom-web/studies/{STUDY}/metadata")
    assert sorted(i["00080018"]["Value"][0] for i in items) == sorted(loaded)
    [one] = await get_json(http, f"/dicom-web/studies/{STUDY}/series/{SERIES2}/instances/{loaded[2]}/metadata")
    assert one["00080060"] == {"vr": "CS", "Value": ["MR"]}
    async with http.get(f"/dicom-web/studies/{STUDY}/metadata",
                        headers={"Accept": 'multipart/related; type="application/dicom+xml"'}) as resp:
        assert resp.status == 200
        assert len(split_multipart(resp.headers["Content-Type"], await resp.read())) == 3
    await get_json(http, f"/dicom-web/studies/{STUDY}/metadata", status=400, headers={"Accept": "image/png"})


async def test_metadata_main_dicom_tags_mode(settings: Settings) -> None:
    section = dict(settings.DicomWeb)
    section["SeriesMetadata"] = "MainDicomTags"
    async with orthanc_lite.serve(settings.replace(DicomWeb=section), host="127.0.0.1") as srv:
        async with aiohttp.ClientSession(base_url=srv.url) as http:
            await post_instance(http, make_instance(STUDY, SERIES))
            [item] = await get_json(http, f"/dicom-web/studies/{STUDY}/series/{SERIES}/metadata")
            assert item["0020000E"] == {"vr": "UI", "Value": [SERIES]}
            assert item["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "DOE^JOHN"}]}
            assert "00280010" not in item  # Rows is not a main DICOM tag


# --- STOW-RS ------------------------------------------------------------------------------------------------

async def test_stow_statuses(http: aiohttp.ClientSession) -> None:
    sop = generate_uid()
    body = stow_body([make_instance(STUDY, SERIES, sop)])
    content_type = 'multipart/related; type="application/dicom"; boundary="XyZBoundary"'
    async with http.post("/dicom-web/studies", data=body, headers={"Content-Type": content_type}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/dicom+json"
        answer = await resp.json(content_type=None)
    [ok] = answer["00081199"]["Value"]
    assert ok["00081155"] == {"vr": "UI", "Value": [sop]}
    assert ok["00081190"]["Value"][0].endswith(f"/studies/{STUDY}/series/{SERIES}/instances/{sop}")
    assert answer["00081198"] == {"vr": "SQ"}
    assert answer["00081190"]["Value"][0].endswith(f"/dicom-web/studies/{STUDY}")
    async with http.get("/instances") as resp:
        assert len(await resp.json()) == 1
    # Another study than the URL's: 409 with FailureReason 0x0110
    other = stow_body([make_instance("1.2.3.77", "1.2.3.77.1")])
    async with http.post(f"/dicom-web/studies/{STUDY}", data=other, headers={"Content-Type": content_type}) as resp:
        assert resp.status == 409
        answer = await resp.json(content_type=None)
    assert answer["00081198"]["Value"][0]["00081197"] == {"vr": "US", "Value": [0x0110]}
    # Not DICOM: 400
    async with http.post("/dicom-web/studies", data=stow_body([b"garbage" * 30]),
                         headers={"Content-Type": content_type}) as resp:
        assert resp.status == 400
    # Not multipart/related application/dicom: 415
    async with http.post("/dicom-web/studies", data=b"x", headers={"Content-Type": "application/dicom"}) as resp:
        assert resp.status == 415
    async with http.post("/dicom-web/studies", data=body,
                         headers={"Content-Type": "multipart/related; type=application/json; boundary=XyZBoundary"}) as resp:
        assert resp.status == 415


async def test_stow_large_part_is_spooled(http: aiohttp.ClientSession, server: orthanc_lite.Server) -> None:
    from tests.dicomweb.helpers import make_instance as make

    big = make(STUDY, SERIES)
    import pydicom
    import io

    ds = pydicom.dcmread(io.BytesIO(big))
    ds.Rows, ds.Columns = 1500, 1500
    ds.PixelData = b"\x01\x02" * (1500 * 1500)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    content_type = "multipart/related; type=application/dicom; boundary=XyZBoundary"
    async with http.post("/dicom-web/studies", data=stow_body([out.getvalue()]),
                         headers={"Content-Type": content_type}) as resp:
        assert resp.status == 200, await resp.text()
    async with http.get("/statistics") as resp:
        assert (await resp.json())["CountInstances"] == 1


# --- WADO-URI, plugins, CORS -------------------------------------------------------------------------------------

async def test_wado_uri_dicom(http: aiohttp.ClientSession, loaded: list[str]) -> None:
    query = f"requestType=WADO&studyUID={STUDY}&seriesUID={SERIES}&objectUID={loaded[0]}&contentType=application/dicom"
    async with http.get(f"/wado?{query}") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/dicom"
        assert read(await resp.read()).SOPInstanceUID == loaded[0]
    async with http.get("/wado?requestType=WADO&objectUID=1.2.3&contentType=application/dicom") as resp:
        assert resp.status == 404
    async with http.get(f"/wado?requestType=NOPE&objectUID={loaded[0]}") as resp:
        assert resp.status == 400
    async with http.get(f"/wado?requestType=WADO&seriesUID={SERIES2}&objectUID={loaded[0]}"
                        "&contentType=application/dicom") as resp:
        assert resp.status == 400


async def test_plugins(http: aiohttp.ClientSession) -> None:
    assert await (await http.get("/plugins")).json() == ["dicom-web"]
    info = await (await http.get("/plugins/dicom-web")).json()
    assert info["ID"] == "dicom-web" and info["Version"] == "1.24"


async def test_cors_is_off_by_default_and_configurable(http: aiohttp.ClientSession, settings: Settings) -> None:
    async with http.get("/dicom-web/studies", headers={"Origin": "http://viewer"}) as resp:
        assert "Access-Control-Allow-Origin" not in resp.headers
    section = dict(settings.DicomWeb)
    section["CorsAllowedOrigins"] = ["http://viewer"]
    secured = settings.replace(DicomWeb=section, AuthenticationEnabled=True, RegisteredUsers={"u": "p"})
    async with orthanc_lite.serve(secured, host="127.0.0.1") as srv:
        async with aiohttp.ClientSession(base_url=srv.url) as other:
            preflight = {"Origin": "http://viewer", "Access-Control-Request-Method": "GET",
                         "Access-Control-Request-Headers": "authorization,accept"}
            async with other.options("/dicom-web/studies/1.2/series/3/metadata", headers=preflight) as resp:
                assert resp.status == 204
                assert resp.headers["Access-Control-Allow-Origin"] == "http://viewer"
                assert resp.headers["Access-Control-Allow-Headers"] == "authorization,accept"
            auth = {"Authorization": aiohttp.encode_basic_auth("u", "p")}
            async with other.get("/dicom-web/studies", headers={"Origin": "http://viewer", **auth}) as resp:
                assert resp.status == 200
                assert resp.headers["Access-Control-Allow-Origin"] == "http://viewer"
            async with other.get("/dicom-web/studies", headers={"Origin": "http://evil", **auth}) as resp:
                assert "Access-Control-Allow-Origin" not in resp.headers


async def test_disabled_dicomweb(settings: Settings) -> None:
    section = dict(settings.DicomWeb)
    section["Enable"] = False
    section["EnableWado"] = False
    async with orthanc_lite.serve(settings.replace(DicomWeb=section), host="127.0.0.1") as srv:
        async with aiohttp.ClientSession(base_url=srv.url) as http:
            assert (await http.get("/dicom-web/studies")).status == 404
            assert (await http.get("/wado?requestType=WADO")).status == 404
            assert await (await http.get("/plugins")).json() == []


async def test_shared_testdata_metadata_is_valid_json(http: aiohttp.ClientSession) -> None:
    """Every shared test file gives metadata (sequences, private tags, odd charsets) without an error."""
    from tests.conftest import all_testdata_files

    for path in all_testdata_files()[:40]:
        try:
            await upload(http, path)
        except AssertionError:
            continue
    studies = await get_json(http, "/dicom-web/studies")
    assert len(studies) > 5
    for study in studies:
        uid = study["0020000D"]["Value"][0]
        items = await get_json(http, f"/dicom-web/studies/{uid}/metadata")
        assert items and all("00080018" in i for i in items)


# --- behaviours of Orthanc's own DICOMweb integration tests (Plugins/DicomWeb/Run.py) --------------------------

async def test_empty_and_un_values_issue_195(http: aiohttp.ClientSession) -> None:
    """An empty value has only its VR; a UN value is bulk data, served raw."""
    await upload(http, testdata("Issue195.dcm"))
    path = ("/dicom-web/studies/1.2.276.0.7230010.3.1.2.8323329.13188.1620309604.848733/series/"
            "1.2.276.0.7230010.3.1.3.8323329.13188.1620309604.848734/instances/"
            "1.2.276.0.7230010.3.1.4.8323329.13188.1620309604.848735")
    [item] = await get_json(http, path + "/metadata", headers={"Accept": "application/dicom+json"})
    assert len(item) == 5
    assert item["00081030"] == {"vr": "LO"}
    assert item["0008103E"] == {"vr": "LO", "Value": ["Hello1"]}
    await upload(http, testdata("Issue195-bis.dcm"))
    path = ("/dicom-web/studies/1.2.276.0.7230010.3.1.2.8323329.6792.1625504071.652468/series/"
            "1.2.276.0.7230010.3.1.3.8323329.6792.1625504071.652469/instances/"
            "1.2.276.0.7230010.3.1.4.8323329.6792.1625504071.652470")
    [item] = await get_json(http, path + "/metadata")
    assert len(item) == 5
    assert item["00084565"] == {"vr": "UN"}
    assert item["00084567"]["vr"] == "UN"
    assert item["00084567"]["BulkDataURI"].endswith(path + "/bulk/00084567")
    async with http.get(path + "/bulk/00084567") as resp:
        [(headers, payload)] = split_multipart(resp.headers["Content-Type"], await resp.read())
    assert payload == b"\x42\x00" and headers["Content-Length"] == "2"


async def test_private_sequences_bulk_and_encapsulated_pixels(http: aiohttp.ClientSession) -> None:
    await upload(http, testdata("PrivateTags.dcm"))
    study, series, sop = ("1.2.840.113619.2.115.147416.1094281639.0.29", "1.2.840.113619.2.115.147416.1094281639.0.30",
                          "1.2.840.113619.2.115.147416.1094281639.0.38")
    [item] = await get_json(http, f"/dicom-web/studies/{study}/metadata")
    base = f"/dicom-web/studies/{study}/series/{series}/instances/{sop}/bulk"
    first = item["60031010"]["Value"][0]["60031011"]
    assert len(first) == 2 and first["BulkDataURI"].endswith(f"{base}/60031010/1/60031011")
    assert item["7FE00010"]["BulkDataURI"].endswith(f"{base}/7fe00010")
    async with http.get(f"{base}/60031010/1/60031011") as resp:
        [(_, payload)] = split_multipart(resp.headers["Content-Type"], await resp.read())
    [instance] = await (await http.get("/instances")).json()
    async with http.get(f"/instances/{instance}/content/6003-1010/0/6003-1011") as resp:
        assert payload == await resp.read() and len(payload) == 12288
    # JPEG: the pixel data items (offset table, then the fragment)
    jpeg_file = testdata("TransferSyntaxes", "1.2.840.10008.1.2.4.50.dcm")
    await upload(http, jpeg_file)
    sop_uid = read(jpeg_file.read_bytes()).SOPInstanceUID
    [jpeg] = await get_json(http, f"/dicom-web/instances?SOPInstanceUID={sop_uid}")
    [meta] = await get_json(http, path_of(jpeg["00081190"]["Value"][0]) + "/metadata")
    assert meta["7FE00010"]["vr"] == "OB"
    async with http.get(path_of(meta["7FE00010"]["BulkDataURI"])) as resp:
        parts = split_multipart(resp.headers["Content-Type"], await resp.read())
    assert [len(p) for _, p in parts] == [4, 53476]


async def test_stow_answers_like_the_plugin(http: aiohttp.ClientSession) -> None:
    content_type = "multipart/related; type=application/dicom; boundary=XyZBoundary"
    data = testdata("Issue196.dcm").read_bytes()  # only SOP class and instance UIDs
    async with http.post("/dicom-web/studies", data=stow_body([data]), headers={"Content-Type": content_type}) as resp:
        assert resp.status == 400
        answer = await resp.json(content_type=None)
    assert sorted(answer) == ["00080005", "00081198", "00081199"]
    assert answer["00080005"]["vr"] == "CS" and "Value" not in answer["00081199"]
    [failed] = answer["00081198"]["Value"]
    assert failed["00081197"]["Value"] == [0xC000]
    assert failed["00081150"]["Value"] == ["1.2.840.10008.5.1.4.1.1.4"]
    body = stow_body([make_instance(STUDY, SERIES)])
    for _ in range(2):  # storing twice succeeds twice
        async with http.post("/dicom-web/studies", data=body, headers={"Content-Type": content_type}) as resp:
            assert resp.status == 200
            answer = await resp.json(content_type=None)
    assert len(answer) == 4 and len(answer["00081199"]["Value"]) == 1 and "Value" not in answer["00081198"]
    async with http.put("/dicom-web/studies") as resp:
        assert resp.status == 405 and resp.headers["Allow"] == "GET,POST"


async def test_qido_sequences_private_tags_and_parent_attributes(http: aiohttp.ClientSession,
                                                                 loaded: list[str]) -> None:
    items = await get_json(http, f"/dicom-web/studies/{STUDY}/series/{SERIES}/instances?includefield=00082218")
    assert items[0]["00082218"]["Value"][0]["00080100"] == {"vr": "SH", "Value": ["T-A0100"]}
    [one] = await get_json(http, f"/dicom-web/series?0020000D={STUDY}&Modality=MR")
    assert "00100010" not in one  # the study is filtered in the query: no study attributes
    [one] = await get_json(http, f"/dicom-web/series?0020000D={STUDY}&Modality=MR&includefield=00100010"
                                 "&includefield=00080020")
    assert "00100010" in one and "00080020" in one
    rows = await get_json(http, "/dicom-web/studies?Rows=4")
    assert len(rows) == 2 and rows[0]["00280010"] == {"vr": "US", "Value": [4]}
    assert await get_json(http, "/dicom-web/studies?Rows=128") == []


async def test_metadata_accept_negotiation_and_forwarded_host(http: aiohttp.ClientSession, loaded: list[str]) -> None:
    url = f"/dicom-web/studies/{STUDY}/series/{SERIES}/metadata"
    for accept in ("application/json, application/dicom+json", "toto, application/dicom+json", "application/json, tata",
                   "application/json, application/dicom+xml", "application/dicom+xml, application/json"):
        assert len(await get_json(http, url, headers={"Accept": accept})) == 2
    for accept in ("toto", "toto, tata"):
        await get_json(http, url, status=400, headers={"Accept": accept})
    items = await get_json(http, url, headers={"Host": "my-domain"})
    assert items[0]["7FE00010"]["BulkDataURI"].startswith("http://my-domain/dicom-web/")
    for bad in ("/dicom-web/studies/0.0.0/series/0.0.0/metadata", f"/dicom-web/studies/{STUDY}/series/{SERIES}/"
                "instances/0.0.0.0/metadata", "/dicom-web/studies/nope/metadata"):
        async with http.get(bad) as resp:
            assert resp.status == 404


async def test_encodings_in_metadata(http: aiohttp.ClientSession) -> None:
    """The file's own SpecificCharacterSet in metadata; DefaultEncoding in QIDO."""
    for path in sorted(testdata().rglob("*")):
        if path.is_file() and "Encodings" in path.parts:
            try:
                await upload(http, path)
            except AssertionError:
                pass
    studies = await get_json(http, "/dicom-web/studies")
    assert all(s["00080005"] == {"vr": "CS", "Value": ["ISO_IR 100"]} for s in studies)
    for study in studies:
        uid = study["0020000D"]["Value"][0]
        for item in await get_json(http, f"/dicom-web/studies/{uid}/metadata"):
            if "00080005" in item:
                assert None not in item["00080005"].get("Value", [])


async def test_host_and_ssl_options(settings: Settings) -> None:
    section = dict(settings.DicomWeb)
    section.update(Host="pacs.example.org:8443", Ssl=True, Root="/dw")
    section.pop("PublicRoot", None)  # as loading a file with this Root would leave it
    async with orthanc_lite.serve(settings.replace(DicomWeb=section), host="127.0.0.1") as srv:
        async with aiohttp.ClientSession(base_url=srv.url) as http:
            await post_instance(http, make_instance(STUDY, SERIES))
            [study] = await get_json(http, "/dw/studies")
            assert study["00081190"]["Value"] == [f"https://pacs.example.org:8443/dw/studies/{STUDY}"]
            assert (await http.get("/dicom-web/studies")).status == 404


async def test_metadata_cache_option_and_update_route(settings: Settings, http: aiohttp.ClientSession,
                                                      loaded: list[str]) -> None:
    [study] = [s for s in await (await http.get("/studies?expand")).json()
               if s["MainDicomTags"]["StudyInstanceUID"] == STUDY]
    async with http.post(f"/studies/{study['ID']}/update-dicomweb-cache") as resp:
        assert resp.status == 200 and await resp.json() == {}
    for series_id in study["Series"]:
        assert "4301" in await (await http.get(f"/series/{series_id}/attachments")).json()
    section = dict(settings.DicomWeb)
    section["EnableMetadataCache"] = False
    async with orthanc_lite.serve(settings.replace(DicomWeb=section, StorageDirectory=settings.StorageDirectory + "2"),
                                  host="127.0.0.1") as srv:
        async with aiohttp.ClientSession(base_url=srv.url) as other:
            stored = await post_instance(other, make_instance(STUDY, SERIES))
            assert len(await get_json(other, f"/dicom-web/studies/{STUDY}/series/{SERIES}/metadata")) == 1
            assert await (await other.get(f"/series/{stored['ParentSeries']}/attachments")).json() == []
            async with other.post(f"/studies/{stored['ParentStudy']}/update-dicomweb-cache") as resp:
                assert resp.status == 400


CLUNIE = {  # file -> (only Alphabetic?, expected Alphabetic, expected Ideographic)
    "SCSFREN": (True, "Buc^Jérôme", None),
    "SCSGERM": (True, "Äneas^Rüdiger", None),
    "SCSGREEK": (True, "Διονυσιος", None),
    "SCSRUSS": (True, "Люкceмбypг", None),
    "SCSHBRW": (True, "שרון^דבורה", None),
    "SCSARAB": (True, "قباني^لنزار", None),
    "SCSI2": (False, "Hong^Gildong", "洪^吉洞"),
    "SCSX2": (False, "Wang^XiaoDong", "王^小东"),
    "SCSX1": (False, "Wang^XiaoDong", "王^小東"),
    "SCSH31": (False, "Yamada^Tarou", "山田^太郎"),
}


async def test_encodings_qido_and_metadata(http: aiohttp.ClientSession) -> None:
    """QIDO answers in DefaultEncoding (ISO_IR 192 once Utf8); metadata keeps each file's character set."""
    async with http.put("/tools/default-encoding", data="Utf8") as resp:
        assert resp.status == 200
    for name, (alphabetic_only, alphabetic, ideographic) in CLUNIE.items():
        path = testdata("Encodings", "DavidClunie", name)
        ds = read(path.read_bytes())
        await upload(http, path)
        [study] = await get_json(http, f"/dicom-web/studies?0020000D={ds.StudyInstanceUID}")
        assert study["00080005"] == {"vr": "CS", "Value": ["ISO_IR 192"]}, name
        pn = study["00100010"]["Value"][0]
        assert len(pn) == (1 if alphabetic_only else 3), (name, pn)
        assert pn["Alphabetic"] == alphabetic, name
        if ideographic:
            assert pn["Ideographic"] == ideographic, name
        [item] = await get_json(http, f"/dicom-web/studies/{ds.StudyInstanceUID}/metadata")
        expected = [t for t in str(ds.SpecificCharacterSet if "SpecificCharacterSet" in ds else "").split("\\") if t]
        if "SpecificCharacterSet" in ds and not isinstance(ds.SpecificCharacterSet, str):
            expected = [t for t in ds.SpecificCharacterSet if t]
        assert item["00080005"]["Value"] == expected, name


async def test_concurrent_cold_metadata_is_computed_once(settings: Settings) -> None:
    import asyncio

    from orthanc_lite.services.dicomweb import metadata_cache

    # No StableSeries during the test: the first requests find the cache cold
    async with orthanc_lite.serve(settings.replace(StableAge=3600), host="127.0.0.1") as srv:
        async with aiohttp.ClientSession(base_url=srv.url) as http:
            for n in (1, 2, 3):
                await post_instance(http, make_instance(STUDY, SERIES, None, n))
            url = f"/dicom-web/studies/{STUDY}/series/{SERIES}/metadata"
            answers = await asyncio.gather(*(get_json(http, url) for _ in range(4)))
            assert all(a == answers[0] for a in answers) and len(answers[0]) == 3
            assert metadata_cache(srv.context).computed == 1


def _broken_jpeg(study: str, series: str) -> bytes:
    """A JPEG baseline instance whose single fragment is not JPEG: no transcoder can decode it."""
    import io

    import pydicom
    from pydicom.encaps import encapsulate

    ds = read(make_instance(study, series, None, 99))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.50"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([b"\xff\xd8 not a jpeg \xff\xd9"])
    ds["PixelData"].VR = "OB"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    del pydicom
    return out.getvalue()


async def test_retrieve_that_cannot_be_transcoded(http: aiohttp.ClientSession) -> None:
    await post_instance(http, _broken_jpeg(STUDY, SERIES))
    async with http.get(f"/dicom-web/studies/{STUDY}") as resp:
        assert 400 <= resp.status < 500  # nothing sent yet: a proper error (406 without a transcoder)
        assert (await resp.json())["HttpStatus"] == resp.status
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    async with http.get(f"/dicom-web/studies/{STUDY}", headers={"Accept": accept}) as resp:
        assert resp.status == 200  # as stored: no transcoding needed
    # Once parts are on the wire, a failure cuts the answer short (never a silently shorter series)
    for n in range(1, 21):
        await post_instance(http, make_instance(STUDY, SERIES2, None, n))
    await post_instance(http, _broken_jpeg(STUDY, SERIES2))
    async with http.get(f"/dicom-web/studies/{STUDY}/series/{SERIES2}") as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    async with http.get("/system") as resp:
        assert resp.status == 200  # the server goes on


async def _statements(server: orthanc_lite.Server, http: aiohttp.ClientSession, path: str) -> int:
    stats = server.context.index.engine.statements
    stats.enabled, stats.count = True, 0
    try:
        async with http.get(path) as resp:
            assert resp.status == 200
            await resp.read()
    finally:
        stats.enabled = False
    return stats.count


async def test_sql_cost_does_not_grow_with_the_series(http: aiohttp.ClientSession, server: orthanc_lite.Server) -> None:
    """QIDO and warm metadata cost a fixed number of statements (no N+1), whatever the number of instances."""
    paths = (f"/dicom-web/studies/{STUDY}/series/{SERIES}/metadata", f"/dicom-web/studies/{STUDY}/instances",
             "/dicom-web/studies", f"/dicom-web/studies/{STUDY}/series")
    for n in (1, 2):
        await post_instance(http, make_instance(STUDY, SERIES, None, n))
    await _statements(server, http, paths[0])  # computes the cache
    small = [await _statements(server, http, p) for p in paths]
    for n in range(3, 23):
        await post_instance(http, make_instance(STUDY, SERIES, None, n))
    await _statements(server, http, paths[0])
    large = [await _statements(server, http, p) for p in paths]
    assert small == large


async def test_case_insensitive_qido_and_extrapolate_mode(settings: Settings) -> None:
    section = dict(settings.DicomWeb)
    section.update(QidoCaseSensitive=False, StudiesMetadata="Extrapolate",
                   StudiesMetadataExtrapolatedTags=["Rows", "SliceThickness"])
    async with orthanc_lite.serve(settings.replace(DicomWeb=section), host="127.0.0.1") as srv:
        async with aiohttp.ClientSession(base_url=srv.url) as http:
            for n in (1, 2, 3):
                await post_instance(http, make_instance(STUDY, SERIES, None, n))
            assert len(await get_json(http, "/dicom-web/studies?PatientName=doe*")) == 1
            assert len(await get_json(http, "/dicom-web/studies?StudyDescription=HEAD")) == 1
            items = await get_json(http, f"/dicom-web/studies/{STUDY}/metadata")
            assert len(items) == 3
            assert all(i["00280010"] == {"vr": "US", "Value": [4]} for i in items)  # extrapolated from the files
            assert all(i["00180050"] == {"vr": "DS", "Value": [1.5]} for i in items)
            assert all("7FE00010" not in i for i in items)  # main tags only, no bulk data


async def test_metadata_and_file_dicom_json_share_one_encoder(http: aiohttp.ClientSession) -> None:
    """WADO-RS metadata and GET /instances/{id}/file as DICOM JSON agree outside binary values; every AT value
    is written "GGGGEEEE" (Orthanc's FormatTag), not only the first one."""
    file = testdata("TransferSyntaxes", "1.2.840.10008.1.2.4.80.dcm")
    up = await upload(http, file)
    ds = read(file.read_bytes())
    path = f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    [meta] = await get_json(http, path + "/metadata")
    async with http.get(f"/instances/{up['ID']}/file", headers={"Accept": "application/dicom+json"}) as resp:
        assert resp.status == 200
        whole = await resp.json(content_type=None)
    assert meta["00280009"] == whole["00280009"] == {"vr": "AT", "Value": ["00540010", "00540020"]}
    binary = {k for k, v in meta.items() if "BulkDataURI" in v}
    assert binary and {k: v for k, v in meta.items() if k not in binary} == \
        {k: v for k, v in whole.items() if k not in binary}
