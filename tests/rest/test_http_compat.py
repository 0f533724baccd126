"""HTTP details of Orthanc 1.13 that every client hits: repeated slashes, XML answers, auto directory, error
content types, nosniff, PUT /tools/default-encoding (Tests.py: test_xml, test_auto_directory,
test_error_codes_content_type, test_googlecode_issue_32). Compared with real Orthanc where it has the feature."""

from __future__ import annotations

import io
import pathlib
from xml.dom import minidom

import aiohttp
import pydicom
import pytest
import requests
from yarl import URL

import orthanc_lite
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from orthanc_lite import app as app_module
from orthanc_lite.config import Settings

from tests.conftest import testdata, upload
from tests.data.make_samples import make_instance
from tests.e2e.orthanc_peer import ORTHANC_AVAILABLE, SKIP_REASON, start_orthanc


async def test_repeated_slashes_resolve(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    await upload(http, testdata("ColorTestMalaterre.dcm"))
    async with http.get("/instances") as resp:
        expected = await resp.json()
    for path in ("//instances", "///instances", "//instances/", "/tools//find"):
        method = "POST" if "find" in path else "GET"
        body = {"Level": "Instance", "Query": {}} if method == "POST" else None
        url = URL(server.url + path, encoded=True)  # as sent by a client joining "http://host/" and "/instances"
        async with http.request(method, url, json=body) as resp:
            assert resp.status == 200, path
            assert await resp.json() == expected, path


async def test_xml_rendering(http: aiohttp.ClientSession) -> None:
    async with http.get("/tools", headers={"Accept": "application/json"}) as resp:
        names = await resp.json()
    async with http.get("/tools", headers={"Accept": "application/xml"}) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/xml"
        xml = minidom.parseString(await resp.read())
    items = xml.getElementsByTagName("root")[0].getElementsByTagName("item")
    assert [i.childNodes[0].data for i in items] == names
    assert "dicom-conformance" in names or "find" in names
    # Objects become one element per key; empty containers are self-closing; scalars are rendered as Orthanc does.
    async with http.get("/changes", headers={"Accept": "application/xml"}) as resp:
        text = await resp.text()
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>\n<root>\n  <Changes />\n  <Done>true</Done>\n')
    # A list of media ranges keeps JSON (Orthanc only looks at the first one, exactly).
    async with http.get("/tools", headers={"Accept": "application/xml, text/plain"}) as resp:
        assert resp.content_type == "application/json"


async def test_auto_directory(http: aiohttp.ClientSession, settings: Settings) -> None:
    async with http.get("/tools") as resp:
        tools = await resp.json()
    for name in ("now", "find", "default-encoding", "dicom-conformance", "invalidate-tags"):
        assert name in tools
    async with http.get("/tools/dicom-conformance") as resp:
        statement = await resp.text()
    assert len(statement) > 1000 and "1.2.840.10008.5.1.4.1.1.2" in statement  # CT Image Storage is listed
    assert "CTImageStorage" in statement and "StudyRootQueryRetrieveInformationModelFind" in statement
    async with http.post("/tools/invalidate-tags", data=b"") as resp:
        assert resp.status == 200 and await resp.read() == b""
    async with http.get("/modalities") as resp:
        assert resp.status == 200
    for path in ("/tools/nope", "/nope", "/nope/nope.html"):
        async with http.get(path) as resp:
            assert resp.status == 404, path
    # An intermediate path without a handler lists the literal children of the routes below it.
    application = app_module.build(settings)

    async def leaf(request: web.Request) -> web.Response:
        """A route registered by the test."""
        return web.Response(text="leaf")

    for path in ("/demo/{x}/leaf", "/demo/{x}/other/{y}", "/demo/{x}/sub/deep", "/demo/{x:[0-9]+}/digits"):
        application.router.add_post(path, leaf)
    async with TestClient(TestServer(application)) as client:
        resp = await client.get("/demo/anything")
        assert resp.status == 200 and await resp.json() == ["leaf", "other", "sub"]
        resp = await client.get("/demo/42")  # the {x:[0-9]+} constraint of a route is honoured
        assert resp.status == 200 and await resp.json() == ["digits", "leaf", "other", "sub"]
        resp = await client.session.get(URL(str(client.make_url("/")) + "/demo/anything/sub", encoded=True))
        assert resp.status == 200 and await resp.json() == ["deep"]
        resp = await client.get("/demo/anything/other/42")  # a route exists, for POST only
        assert resp.status == 405
        resp = await client.get("/demo/anything/nope")
        assert resp.status == 404


async def test_error_codes_content_type(http: aiohttp.ClientSession) -> None:
    async with http.get("/rnm94%3Cscript%3Ealert(1)%3C/script%3Ejdtkc/explorer.html") as resp:
        assert resp.status == 404
        assert resp.headers["Content-Type"] == "text/plain"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert b'"OrthancStatus" : 17' in await resp.read() or b'"OrthancStatus": 17' in await resp.read()
    async with http.put("/system", data=b"hello") as resp:
        assert resp.status == 405
        assert "Content-Type" not in resp.headers  # no body, no content type
        assert resp.headers["Allow"] == "GET"
    async with http.get("/system") as resp:
        assert "nosniff" in resp.headers["X-Content-Type-Options"]


async def test_put_default_encoding_answers_the_name(http: aiohttp.ClientSession) -> None:
    async with http.put("/tools/default-encoding", data=b"nope") as resp:
        assert resp.status == 400
    async with http.put("/tools/default-encoding", data=b"Windows1251") as resp:
        assert resp.status == 200
        assert await resp.text() == "Windows1251"
    async with http.get("/tools/default-encoding") as resp:
        assert await resp.text() == "Windows1251"
    # Issue 32: a file without SpecificCharacterSet is read with the default encoding in effect at upload.
    ds = pydicom.dcmread(io.BytesIO(make_instance("ISSUE32")))
    del ds.SpecificCharacterSet
    ds.SeriesDescription = "Рентгенография".encode("cp1251")
    buf = io.BytesIO()
    ds.save_as(buf)
    first = await upload_bytes(http, buf.getvalue())
    async with http.get(f"/instances/{first}/simplified-tags") as resp:
        assert (await resp.json())["SeriesDescription"] == "Рентгенография"
    async with http.put("/tools/default-encoding", data=b"Latin1") as resp:
        assert await resp.text() == "Latin1"
    async with http.delete(f"/instances/{first}") as resp:
        assert resp.status == 200
    again = await upload_bytes(http, buf.getvalue())
    async with http.get(f"/instances/{again}/simplified-tags") as resp:
        assert (await resp.json())["SeriesDescription"] != "Рентгенография"


async def upload_bytes(http: aiohttp.ClientSession, data: bytes) -> str:
    async with http.post("/instances", data=data) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["ID"])


@pytest.mark.orthanc
@pytest.mark.skipif(not ORTHANC_AVAILABLE, reason=SKIP_REASON)
async def test_xml_and_slashes_equal_real_orthanc(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                                  tmp_path: pathlib.Path) -> None:
    files = [testdata("ColorTestMalaterre.dcm"), testdata("SignedCT.dcm")]
    for f in files:
        await upload(http, f)
    with start_orthanc(tmp_path / "orthanc") as peer:
        for f in files:
            requests.post(peer.url + "/instances", data=f.read_bytes(), timeout=30).raise_for_status()
        for path in ("/patients", "/studies", "/series", "//instances"):
            theirs = requests.get(peer.url + path, headers={"Accept": "application/xml"}, timeout=30)
            async with http.get(URL(server.url + path, encoded=True), headers={"Accept": "application/xml"}) as resp:
                ours = await resp.read()
            assert resp.status == theirs.status_code == 200, path
            # Same documents; the order of IDs in lists is not specified by Orthanc, so compare sorted lines.
            assert sorted(ours.decode().splitlines()) == sorted(theirs.text.splitlines()), path
        theirs_empty = requests.get(peer.url + "/exports", headers={"Accept": "application/xml"}, timeout=30)
        async with http.get("/exports", headers={"Accept": "application/xml"}) as resp:
            ours_text = await resp.text()
        assert "<Exports />" in theirs_empty.text and "<Exports />" in ours_text
