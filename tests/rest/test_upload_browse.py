"""Upload, browse, delete and changes over real HTTP against an in-process server."""

from __future__ import annotations

import gzip
import io
import zipfile

import aiohttp
import pytest

from orthanc_lite import ids
from tests.conftest import testdata, upload
from tests.data.make_samples import make_instance, make_series


async def test_upload_answer_and_identifiers(http: aiohttp.ClientSession) -> None:
    data = make_instance("ozp00SjY2xG", study_uid="1.2.840.113619.2.176.2025.1499492.7391.1171285944.390")
    async with http.post("/instances", data=data) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["Status"] == "Success"
    assert body["ParentPatient"] == "6816cb19-844d5aee-85245eba-28e841e6-2414fae2"
    assert body["ParentStudy"] == "b9c08539-26f93bde-c81ab0d7-bffaf2cb-a4d0bdd0"
    assert body["Path"] == f"/instances/{body['ID']}"
    assert set(body) == {"ID", "ParentPatient", "ParentSeries", "ParentStudy", "Path", "Status"}
    async with http.post("/instances", data=data) as resp:
        again = await resp.json()
    assert again["Status"] == "AlreadyStored" and again["ID"] == body["ID"]


async def test_gzip_zip_and_multipart_uploads(http: aiohttp.ClientSession) -> None:
    series = make_series(3, patient_id="ZIP")
    async with http.post("/instances", data=gzip.compress(series[0]), headers={"Content-Encoding": "gzip"}) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["Status"] == "Success"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i, d in enumerate(series):
            z.writestr(f"dir/{i}.dcm", d)
        z.writestr("DICOMDIR", b"not really")
        z.writestr("readme.txt", b"hello")
    async with http.post("/instances", data=buf.getvalue()) as resp:
        assert resp.status == 200
        answers = await resp.json()
    assert isinstance(answers, list) and [a["Status"] for a in answers] == ["AlreadyStored", "Success", "Success"]
    form = aiohttp.FormData()
    form.add_field("file", make_instance("FORM"), filename="a.dcm", content_type="application/dicom")
    async with http.post("/instances", data=form) as resp:
        assert resp.status == 200
        assert await resp.read() == b""  # Orthanc answers form uploads (Orthanc Explorer's) with an empty body
    async with http.get("/statistics") as resp:
        stats = await resp.json()
    assert stats["CountInstances"] == 4 and stats["CountPatients"] == 2
    assert isinstance(stats["TotalDiskSize"], str)


@pytest.mark.parametrize("body", [b"", b"not dicom at all" * 20, make_instance()[:200]])
async def test_bad_bodies_give_400_and_store_nothing(http: aiohttp.ClientSession, body: bytes) -> None:
    async with http.post("/instances", data=body) as resp:
        assert resp.status == 400
        err = await resp.json()
    assert err["HttpStatus"] == 400 and err["Method"] == "POST" and err["Uri"] == "/instances"
    assert err["OrthancStatus"] == 15
    async with http.get("/instances") as resp:
        assert await resp.json() == []


async def test_missing_uid_is_rejected(http: aiohttp.ClientSession) -> None:
    from pydicom import dcmread

    ds = dcmread(io.BytesIO(make_instance()))
    del ds.SeriesInstanceUID
    buf = io.BytesIO()
    ds.save_as(buf)
    async with http.post("/instances", data=buf.getvalue()) as resp:
        assert resp.status == 404  # an absent UID is InexistentTag, as in Orthanc
        assert (await resp.json())["OrthancStatus"] == 21
    ds.SeriesInstanceUID = ""
    buf = io.BytesIO()
    ds.save_as(buf)
    async with http.post("/instances", data=buf.getvalue()) as resp:
        assert resp.status == 400
        assert "SeriesInstanceUID" in (await resp.json())["Details"]


async def test_browse_shapes(http: aiohttp.ClientSession) -> None:
    files = make_series(2, patient_id="BROWSE", ImagesInAcquisition=2, NumberOfTemporalPositions=1)
    answers = [await (await http.post("/instances", data=f)).json() for f in files]
    instance = answers[0]
    async with http.get(f"/patients/{instance['ParentPatient']}") as resp:
        patient = await resp.json()
    assert patient["Type"] == "Patient" and patient["MainDicomTags"]["PatientID"] == "BROWSE"
    assert patient["Studies"] == [instance["ParentStudy"]]
    assert set(patient) >= {"ID", "IsStable", "LastUpdate", "Labels", "MainDicomTags", "Studies", "Type"}
    async with http.get(f"/studies/{instance['ParentStudy']}") as resp:
        study = await resp.json()
    assert study["PatientMainDicomTags"]["PatientName"] == "Doe^John"
    assert "PatientName" not in study["MainDicomTags"] and study["MainDicomTags"]["StudyDate"] == "20240102"
    async with http.get(f"/series/{instance['ParentSeries']}") as resp:
        series = await resp.json()
    assert series["Status"] == "Complete" and series["ExpectedNumberOfInstances"] == 2
    assert sorted(series["Instances"]) == sorted(a["ID"] for a in answers)
    async with http.get(f"/instances/{instance['ID']}") as resp:
        inst = await resp.json()
    assert inst["IndexInSeries"] == 1 and inst["FileSize"] == len(files[0]) and len(inst["FileUuid"]) == 36
    assert "IsStable" not in inst
    async with http.get(f"/instances/{instance['ID']}?short") as resp:
        assert "0008,0018" in (await resp.json())["MainDicomTags"]
    async with http.get(f"/instances/{instance['ID']}?full") as resp:
        assert (await resp.json())["MainDicomTags"]["0020,0013"] == {"Name": "InstanceNumber", "Type": "String", "Value": "1"}
    async with http.get(f"/studies/{instance['ParentStudy']}/instances") as resp:
        children = await resp.json()
    assert len(children) == 2 and children[0]["Type"] == "Instance"
    async with http.get(f"/studies/{instance['ParentStudy']}/instances?expand=false") as resp:
        assert sorted(await resp.json()) == sorted(a["ID"] for a in answers)
    async with http.get(f"/instances/{instance['ID']}/patient") as resp:
        assert (await resp.json())["ID"] == instance["ParentPatient"]
    async with http.get("/studies?expand") as resp:
        assert [s["ID"] for s in await resp.json()] == [instance["ParentStudy"]]
    async with http.get("/instances?since=1&limit=5") as resp:
        assert await resp.json() == [answers[1]["ID"]]
    async with http.get("/instances?since=1") as resp:
        assert resp.status == 400
    async with http.get("/patients/") as resp:  # a trailing slash is ignored
        assert await resp.json() == [instance["ParentPatient"]]
    async with http.get(f"/series/{instance['ParentSeries']}/statistics") as resp:
        stats = await resp.json()
    assert stats["CountInstances"] == 2 and stats["DicomDiskSize"] == str(sum(len(f) for f in files))


async def test_http_rules(http: aiohttp.ClientSession) -> None:
    async with http.get("/patients/ffffffff-ffffffff-ffffffff-ffffffff-ffffffff") as resp:
        assert resp.status == 404
    async with http.get("/nonexistent") as resp:
        assert resp.status == 404
    async with http.put("/patients") as resp:
        assert resp.status == 405 and "GET" in resp.headers["Allow"]
    async with http.get("/instances?expand=maybe") as resp:
        assert resp.status == 400
    async with http.get("/tools/default-encoding") as resp:
        assert await resp.text() == "Latin1"
    async with http.put("/tools/default-encoding", data="Utf8") as resp:
        assert resp.status == 200
    async with http.get("/tools/default-encoding") as resp:
        assert await resp.text() == "Utf8"
    async with http.get("/system") as resp:
        system = await resp.json()
    assert system["Version"] == "1.13.0" and system["ApiVersion"] == 31 and "OrthancLiteVersion" in system
    async with http.get("/plugins") as resp:
        assert await resp.json() == ["dicom-web"]  # the built-in DICOMweb server


async def test_delete_cascades_and_changes(http: aiohttp.ClientSession) -> None:
    files = make_series(2, patient_id="DEL")
    answers = [await (await http.post("/instances", data=f)).json() for f in files]
    async with http.get("/changes") as resp:
        changes = await resp.json()
    types = [c["ChangeType"] for c in changes["Changes"]]
    assert types[:4] == ["NewInstance", "NewSeries", "NewStudy", "NewPatient"] and types[4] == "NewInstance"
    assert changes["Done"] is True and changes["First"] == 1 and changes["Last"] == changes["Changes"][-1]["Seq"]
    async with http.get("/changes?limit=1&since=1") as resp:
        page = await resp.json()
    assert page["Done"] is False and [c["Seq"] for c in page["Changes"]] == [2]
    async with http.delete(f"/instances/{answers[0]['ID']}") as resp:
        assert (await resp.json())["RemainingAncestor"] == {
            "ID": answers[0]["ParentSeries"], "Path": f"/series/{answers[0]['ParentSeries']}", "Type": "Series"}
    async with http.delete(f"/instances/{answers[1]['ID']}") as resp:
        assert (await resp.json())["RemainingAncestor"] is None
    async with http.get("/patients") as resp:
        assert await resp.json() == []
    async with http.get("/statistics") as resp:
        assert (await resp.json())["TotalDiskSize"] == "0"
    async with http.get("/changes") as resp:
        assert (await resp.json())["Changes"] == []


async def test_real_files_identifiers(http: aiohttp.ClientSession) -> None:
    body = await upload(http, testdata("Series", "Lena-1.dcm"))
    async with http.get(f"/instances/{body['ID']}") as resp:
        inst = await resp.json()
    sop = inst["MainDicomTags"]["SOPInstanceUID"]
    async with http.get(f"/patients/{body['ParentPatient']}") as resp:
        pid = (await resp.json())["MainDicomTags"].get("PatientID", "")
    async with http.get(f"/studies/{body['ParentStudy']}") as resp:
        study_uid = (await resp.json())["MainDicomTags"]["StudyInstanceUID"]
    async with http.get(f"/series/{body['ParentSeries']}") as resp:
        series_uid = (await resp.json())["MainDicomTags"]["SeriesInstanceUID"]
    assert body["ID"] == ids.instance_id(pid, study_uid, series_uid, sop)
    async with http.post("/tools/lookup", data=sop) as resp:
        assert await resp.json() == [{"ID": body["ID"], "Path": f"/instances/{body['ID']}", "Type": "Instance"}]


async def test_requested_tags_on_resource_routes(http: aiohttp.ClientSession) -> None:
    files = make_series(2, patient_id="RT", modality="MR")
    answers = [await (await http.post("/instances", data=f)).json() for f in files]
    study = answers[0]["ParentStudy"]
    query = "requested-tags=ModalitiesInStudy;NumberOfStudyRelatedInstances;PatientName;Rows"
    async with http.get(f"/studies?expand&{query}") as resp:
        listed = await resp.json()
    assert listed[0]["RequestedTags"]["ModalitiesInStudy"] == "MR"
    assert listed[0]["RequestedTags"]["NumberOfStudyRelatedInstances"] == "2"
    assert listed[0]["RequestedTags"]["PatientName"] == "Doe^John"
    assert listed[0]["MainDicomTags"]["StudyDate"] == "20240102"
    async with http.get(f"/studies/{study}?{query}") as resp:
        one = await resp.json()
    assert one["ID"] == study and one["RequestedTags"]["ModalitiesInStudy"] == "MR"
    async with http.get(f"/studies/{study}/instances?requested-tags=Rows&short") as resp:
        children = await resp.json()
    assert sorted(c["ID"] for c in children) == sorted(a["ID"] for a in answers)
    assert children[0]["RequestedTags"] == {"0028,0010": "8"}
