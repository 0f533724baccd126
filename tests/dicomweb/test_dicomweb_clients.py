"""Real clients against the DICOMweb server: dicomweb-client (search, retrieve, store), and answers compared
field by field with real Orthanc's DICOMweb plugin on the shared test data."""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any, Callable, TypeVar

import aiohttp
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid

import orthanc_lite
from tests.conftest import testdata, upload
from tests.dicomweb.helpers import make_instance, read
from tests.e2e.orthanc_peer import ORTHANC_AVAILABLE, SKIP_REASON, start_orthanc

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """dicomweb-client blocks (requests): run it beside the server's loop, never on it."""
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))


async def test_dicomweb_client_store_search_retrieve(server: orthanc_lite.Server) -> None:
    client = DICOMwebClient(url=server.url + "/dicom-web")
    study, series = generate_uid(), generate_uid()
    datasets = [read(make_instance(study, series, None, n)) for n in (1, 2, 3)]
    answer = await in_thread(client.store_instances, datasets)
    assert len(answer.ReferencedSOPSequence) == 3

    studies = await in_thread(client.search_for_studies, search_filters={"PatientID": "P1"})
    assert [s["0020000D"]["Value"][0] for s in studies] == [study]
    found = await in_thread(client.search_for_instances, study_instance_uid=study, limit=2)
    assert len(found) == 2

    instances = await in_thread(client.retrieve_series, study, series)
    assert sorted(int(ds.InstanceNumber) for ds in instances) == [1, 2, 3]
    assert all(ds.PixelData == bytes(range(32)) for ds in instances)

    metadata = await in_thread(client.retrieve_series_metadata, study, series)
    assert len(metadata) == 3
    sop = metadata[0]["00080018"]["Value"][0]
    one = await in_thread(client.retrieve_instance, study, series, sop)
    assert one.SOPInstanceUID == sop
    # dicomweb-client sends "Host" without the port, so the URI names port 80 (real Orthanc does the same)
    uri = metadata[0]["7FE00010"]["BulkDataURI"]
    assert uri.startswith("http://127.0.0.1/dicom-web/studies/")
    frame_bulk = await in_thread(client.retrieve_bulkdata, uri.replace("http://127.0.0.1/", server.url + "/"))
    assert frame_bulk == [bytes(range(32))]


# --- compared with real Orthanc 1.10.1 + DICOMweb plugin ------------------------------------------------------

COMPARED = ["Series/Lena-1.dcm", "Series/Lena-2.dcm", "PrivateTags.dcm", "Issue146.dcm", "SignedCT.dcm",
            "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm", "TransferSyntaxes/1.2.840.10008.1.2.2.dcm",
            "TransferSyntaxes/1.2.840.10008.1.2.4.80.dcm", "DicomSeg.dcm"]  # the last two: AT values


def _orthanc_get(url: str, **kw: Any) -> Any:
    resp = requests.get(url, timeout=30, **kw)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _without_hosts(items: list[dict[str, Any]], host: str) -> str:
    import json

    return json.dumps(items, sort_keys=True).replace(host, "HOST")


def _compare_objects(ours: dict[str, Any], theirs: dict[str, Any], where: str) -> None:
    """Every attribute real Orthanc answers is answered the same (ours may add the 1.24 plugin's attributes)."""
    for key, value in theirs.items():
        assert key in ours, f"{where}: {key} missing"
        assert ours[key] == value, f"{where}: {key}: {ours[key]} != {value}"


@pytest.mark.orthanc
@pytest.mark.skipif(not ORTHANC_AVAILABLE, reason=SKIP_REASON)
async def test_qido_and_metadata_match_real_orthanc(http: aiohttp.ClientSession, server: orthanc_lite.Server,
                                                    tmp_path: pathlib.Path) -> None:
    for name in COMPARED:
        await upload(http, testdata(name))
    with start_orthanc(tmp_path / "orthanc", plugins=True) as peer:
        for name in COMPARED:
            await in_thread(requests.post, peer.url + "/instances", data=testdata(name).read_bytes(), timeout=30)
        our_host = server.url.split("//")[1]
        their_host = peer.url.split("//")[1]

        async def ours(path: str) -> Any:
            async with http.get(path) as resp:
                assert resp.status == 200, await resp.text()
                return await resp.json(content_type=None)

        ours_studies = {s["0020000D"]["Value"][0]: s for s in await ours("/dicom-web/studies")}
        theirs_studies = {s["0020000D"]["Value"][0]: s
                          for s in await in_thread(_orthanc_get, peer.url + "/dicom-web/studies")}
        assert sorted(ours_studies) == sorted(theirs_studies)
        for uid, theirs in theirs_studies.items():
            fixed = _without_hosts([ours_studies[uid]], our_host)
            _compare_objects(json.loads(fixed)[0],
                             json.loads(_without_hosts([theirs], their_host))[0], f"study {uid}")
            our_instances = {i["00080018"]["Value"][0]: i for i in await ours(f"/dicom-web/studies/{uid}/instances")}
            their_instances = await in_thread(_orthanc_get, f"{peer.url}/dicom-web/studies/{uid}/instances")
            assert sorted(our_instances) == sorted(i["00080018"]["Value"][0] for i in their_instances)
            for theirs_one in their_instances:
                sop = theirs_one["00080018"]["Value"][0]
                _compare_objects(json.loads(_without_hosts([our_instances[sop]], our_host))[0],
                                 json.loads(_without_hosts([theirs_one], their_host))[0], f"instance {sop}")
            our_series = await ours(f"/dicom-web/studies/{uid}/series")
            their_series = await in_thread(_orthanc_get, f"{peer.url}/dicom-web/studies/{uid}/series")
            assert len(our_series) == len(their_series)
            for theirs_one in their_series:
                series_uid = theirs_one["0020000E"]["Value"][0]
                [mine] = [s for s in our_series if s["0020000E"]["Value"][0] == series_uid]
                _compare_objects(json.loads(_without_hosts([mine], our_host))[0],
                                 json.loads(_without_hosts([theirs_one], their_host))[0],
                                 f"series {series_uid}")
                our_meta = await ours(f"/dicom-web/studies/{uid}/series/{series_uid}/metadata")
                their_meta = await in_thread(
                    _orthanc_get, f"{peer.url}/dicom-web/studies/{uid}/series/{series_uid}/metadata")
                assert len(our_meta) == len(their_meta)
                for theirs_item in their_meta:
                    sop = theirs_item["00080018"]["Value"][0]
                    [mine_item] = [m for m in our_meta if m["00080018"]["Value"][0] == sop]
                    a = json.loads(_without_hosts([mine_item], our_host))[0]
                    b = json.loads(_without_hosts([theirs_item], their_host))[0]
                    _compare_objects(a, b, f"metadata {sop}")
                    # Orthanc >= 1.12.1 also announces encapsulated pixel data (1.10.1 left it out)
                    extra = set(a) - set(b)
                    assert extra <= {"7FE00010"}, f"metadata {sop}: extra {extra}"
                    if extra:
                        assert a["7FE00010"]["vr"] == "OB" and "BulkDataURI" in a["7FE00010"]


@pytest.mark.orthanc
@pytest.mark.skipif(not ORTHANC_AVAILABLE, reason=SKIP_REASON)
async def test_stow_matches_real_orthanc(http: aiohttp.ClientSession, server: orthanc_lite.Server,
                                         tmp_path: pathlib.Path) -> None:
    from tests.dicomweb.helpers import stow_body

    lena = testdata("Series", "Lena-1.dcm").read_bytes()
    study = str(read(lena).StudyInstanceUID)
    cases = [("/dicom-web/studies", [lena]), ("/dicom-web/studies", [lena]),
             (f"/dicom-web/studies/{study}", [lena]), ("/dicom-web/studies/1.2.3.4", [lena]),
             ("/dicom-web/studies", [b"not dicom" * 20]), ("/dicom-web/studies", [testdata("Issue196.dcm").read_bytes()]),
             ("/dicom-web/studies", [lena, b"not dicom" * 20])]
    headers = {"Content-Type": "multipart/related; type=application/dicom; boundary=XyZBoundary"}
    with start_orthanc(tmp_path / "orthanc", plugins=True) as peer:
        their_host = peer.url.split("//")[1]
        our_host = server.url.split("//")[1]
        for path, parts in cases:
            body = stow_body(parts)
            async with http.post(path, data=body, headers=headers) as resp:
                our_status, ours = resp.status, json.loads(await resp.read() or b"{}")
            theirs_resp = await in_thread(requests.post, peer.url + path, data=body, headers=headers, timeout=30)
            assert our_status == theirs_resp.status_code, path
            if theirs_resp.content:
                theirs = json.loads(_without_hosts([theirs_resp.json()], their_host))[0]
                mine = json.loads(_without_hosts([ours], our_host))[0]
                for key in ("00081190", "00081199"):
                    assert mine.get(key) == theirs.get(key), (path, key)
                failed_theirs = theirs.get("00081198", {}).get("Value", [])
                assert mine["00081198"].get("Value", []) == failed_theirs, path
