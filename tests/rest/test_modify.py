"""Modify and anonymize over HTTP: new hierarchies, consistent identifiers, metadata, KeepSource, errors."""

from __future__ import annotations

import asyncio
import io

import aiohttp
import pydicom
import pytest

from tests.conftest import testdata, upload

CT_SERIES = sorted(testdata("Series").glob("*.dcm")) if testdata("Series").is_dir() else []


async def _json(resp: aiohttp.ClientResponse) -> object:
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def _get(http: aiohttp.ClientSession, path: str) -> object:
    async with http.get(path) as resp:
        return await _json(resp)


async def _post(http: aiohttp.ClientSession, path: str, body: object) -> object:
    async with http.post(path, json=body) as resp:
        return await _json(resp)


async def _error(http: aiohttp.ClientSession, path: str, body: object, status: int) -> dict:
    async with http.post(path, json=body) as resp:
        assert resp.status == status, await resp.text()
        return await resp.json()


async def test_modify_study_creates_a_new_study(http: aiohttp.ClientSession) -> None:
    stored = await upload(http, testdata("PrivateTags.dcm"))
    study = stored["ParentStudy"]
    answer = await _post(http, f"/studies/{study}/modify", {"Replace": {"StudyDescription": "Hello"}})
    assert answer["Type"] == "Study" and answer["ID"] != study
    assert answer["Path"] == f"/studies/{answer['ID']}"
    assert answer["PatientID"] == stored["ParentPatient"]  # same patient: PatientID untouched
    assert answer["InstancesCount"] == 1 and answer["FailedInstancesCount"] == 0
    assert answer["IsAnonymization"] is False
    new = await _get(http, f"/studies/{answer['ID']}")
    assert new["MainDicomTags"]["StudyDescription"] == "Hello"
    assert new["ModifiedFrom"] == study
    source = await _get(http, f"/studies/{study}")  # KeepSource defaults to true
    assert source["MainDicomTags"].get("StudyDescription") != "Hello"
    assert new["MainDicomTags"]["StudyInstanceUID"] != source["MainDicomTags"]["StudyInstanceUID"]
    series = new["Series"][0]
    async with http.get(f"/series/{series}/metadata/ModifiedFrom") as resp:
        assert await resp.text() == stored["ParentSeries"]
    instance = (await _get(http, f"/series/{series}"))["Instances"][0]
    async with http.get(f"/instances/{instance}/metadata/ModifiedFrom") as resp:
        assert await resp.text() == stored["ID"]
    async with http.get(f"/patients/{stored['ParentPatient']}/metadata") as resp:
        assert "ModifiedFrom" not in await resp.json()  # the patient did not change


async def test_modify_keepsource_false_removes_the_source(http: aiohttp.ClientSession) -> None:
    stored = await upload(http, testdata("PrivateTags.dcm"))
    answer = await _post(http, f"/series/{stored['ParentSeries']}/modify",
                         {"Replace": {"SeriesDescription": "moved"}, "KeepSource": False})
    async with http.get(f"/series/{stored['ParentSeries']}") as resp:
        assert resp.status == 404
    assert (await _get(http, f"/series/{answer['ID']}"))["MainDicomTags"]["SeriesDescription"] == "moved"
    assert len(await _get(http, "/instances")) == 1


async def test_modify_identifier_rules(http: aiohttp.ClientSession) -> None:
    stored = await upload(http, testdata("PrivateTags.dcm"))
    study, patient = stored["ParentStudy"], stored["ParentPatient"]
    err = await _error(http, f"/studies/{study}/modify", {"Replace": {"PatientID": "x"}}, 400)
    assert err["Details"] == 'Marking tag "PatientID" as to be replaced requires the "Force" option to be set to true'
    err = await _error(http, f"/patients/{patient}/modify", {"Replace": {"PatientName": "x"}}, 400)
    assert err["Details"] == "When modifying a patient, her PatientID is required to be modified."
    await _error(http, f"/studies/{study}/modify", {"Remove": ["StudyInstanceUID"]}, 400)
    await _error(http, f"/studies/{study}/modify", {"Replace": {"NoSuchTag": "x"}}, 500)
    answer = await _post(http, f"/patients/{patient}/modify", {"Replace": {"PatientID": "NEW"}, "Force": True})
    assert answer["Type"] == "Patient"
    assert (await _get(http, f"/patients/{answer['ID']}"))["MainDicomTags"]["PatientID"] == "NEW"
    forced = await _post(http, f"/studies/{study}/modify",
                         {"Replace": {"StudyInstanceUID": "1.2.3.4"}, "Force": True})
    assert (await _get(http, f"/studies/{forced['ID']}"))["MainDicomTags"]["StudyInstanceUID"] == "1.2.3.4"
    async with http.post("/studies/00000000-00000000-00000000-00000000-00000000/modify", json={}) as resp:
        assert resp.status == 404


@pytest.mark.skipif(not CT_SERIES, reason="no multi-instance series in the shared test data")
async def test_anonymize_study_keeps_the_hierarchy_consistent(http: aiohttp.ClientSession) -> None:
    for path in CT_SERIES[:5]:
        stored = await upload(http, path)
    study = stored["ParentStudy"]
    source = await _get(http, f"/studies/{study}")
    answer = await _post(http, f"/studies/{study}/anonymize", {})
    assert answer["IsAnonymization"] is True
    new = await _get(http, f"/studies/{answer['ID']}")
    assert new["AnonymizedFrom"] == study
    assert new["PatientMainDicomTags"]["PatientName"].startswith("Anonymized")
    assert len(new["Series"]) == len(source["Series"])
    patient = await _get(http, f"/patients/{new['ParentPatient']}")
    assert patient["AnonymizedFrom"] == source["ParentPatient"]
    uids = set()
    for series in new["Series"]:
        for instance in (await _get(http, f"/series/{series}"))["Instances"]:
            tags = await _get(http, f"/instances/{instance}/simplified-tags")
            assert tags["StudyInstanceUID"] == new["MainDicomTags"]["StudyInstanceUID"]
            assert tags["DeidentificationMethod"].endswith("PS 3.15-2023b Table E.1-1 Basic Profile")
            assert tags["PatientIdentityRemoved"] == "YES"
            uids.add(tags["FrameOfReferenceUID"]) if "FrameOfReferenceUID" in tags else None
    assert len(uids) <= 1  # one source frame of reference -> one mapped UID


async def test_instance_modify_answers_a_file_and_stores_nothing(http: aiohttp.ClientSession) -> None:
    stored = await upload(http, testdata("PrivateTags.dcm"))
    async with http.post(f"/instances/{stored['ID']}/modify",
                         json={"Replace": {"PatientName": "Modified^Name"}, "Remove": ["StudyDescription"]}) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/dicom"
        data = await resp.read()
    ds = pydicom.dcmread(io.BytesIO(data))
    assert ds.PatientName == "Modified^Name"
    assert "StudyDescription" not in ds
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert len(await _get(http, "/instances")) == 1
    async with http.post(f"/instances/{stored['ID']}/anonymize", json={}) as resp:
        anonymized = pydicom.dcmread(io.BytesIO(await resp.read()))
    original = pydicom.dcmread(testdata("PrivateTags.dcm"))
    assert anonymized.SOPInstanceUID != original.SOPInstanceUID
    assert anonymized.PatientID != original.PatientID
    assert not any(elem.tag.is_private for elem in anonymized)


async def test_bulk_modify_and_anonymize(http: aiohttp.ClientSession) -> None:
    a = await upload(http, testdata("PrivateTags.dcm"))
    b = await upload(http, testdata("SignedCT.dcm"))
    answer = await _post(http, "/tools/bulk-anonymize", {"Resources": [a["ParentStudy"]]})
    assert [r["Type"] for r in answer["Resources"]] == ["Instance", "Series", "Study", "Patient"]
    answer = await _post(http, "/tools/bulk-modify", {"Resources": [a["ID"], b["ID"]],
                                                       "Replace": {"InstitutionName": "Bulk"}})
    kinds = [r["Type"] for r in answer["Resources"]]
    assert kinds == ["Instance", "Instance", "Series", "Series", "Study", "Study", "Patient", "Patient"]
    # Instance level (detected: no identifier replaced): the copies join their source series.
    series_ids = {r["ID"] for r in answer["Resources"] if r["Type"] == "Series"}
    assert series_ids == {a["ParentSeries"], b["ParentSeries"]}


async def test_modified_instances_metadata_match_their_files(http: aiohttp.ClientSession) -> None:
    """The store takes the summary of the dataset it just wrote (no second parse): PixelDataOffset, PixelDataVR,
    TransferSyntax and the main tags must still be those of the file."""
    from orthanc_lite.dicom.parse import parse_instance
    for name in ("PrivateTags.dcm", "TransferSyntaxes/1.2.840.10008.1.2.dcm", "TransferSyntaxes/1.2.840.10008.1.2.2.dcm",
                 "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm"):
        stored = await upload(http, testdata(*name.split("/")))
        answer = await _post(http, f"/series/{stored['ParentSeries']}/anonymize", {})
        instance = (await _get(http, f"/series/{answer['ID']}"))["Instances"][0]
        async with http.get(f"/instances/{instance}/file") as resp:
            parsed = await asyncio.to_thread(parse_instance, await resp.read())
        meta = await _get(http, f"/instances/{instance}/metadata?expand")
        assert meta.get("PixelDataOffset") == (str(parsed.pixel_data_offset) if parsed.pixel_data_offset else None)
        assert meta.get("PixelDataVR") == parsed.pixel_data_vr
        assert meta["TransferSyntax"] == parsed.transfer_syntax
        assert parsed.instance_public_id == instance
        assert (await _get(http, f"/instances/{instance}"))["MainDicomTags"]["SOPInstanceUID"] == parsed.sop_uid


async def test_transcode_field(http: aiohttp.ClientSession) -> None:
    """`Transcode`: with the transcoder (dicom/transcode.py) the copies are in the target syntax; without it,
    Orthanc's fallback: the job keeps the original syntax, the single-instance route answers 500."""
    from orthanc_lite.services.modify import transcoder
    stored = await upload(http, testdata("TransferSyntaxes", "1.2.840.10008.1.2.dcm"))
    target = "1.2.840.10008.1.2.1"
    answer = await _post(http, f"/studies/{stored['ParentStudy']}/modify",
                         {"Replace": {"StudyDescription": "t"}, "Transcode": target})
    assert answer["Transcode"] == target
    instance = (await _get(http, f"/studies/{answer['ID']}/instances"))[0]["ID"]
    async with http.get(f"/instances/{instance}/metadata/TransferSyntax") as resp:
        syntax = await resp.text()
    async with http.post(f"/instances/{stored['ID']}/modify", json={"Transcode": target}) as resp:
        single = resp.status
    if transcoder() is None:
        assert syntax == "1.2.840.10008.1.2" and single == 500
    else:
        assert syntax == target and single == 200
    await _error(http, f"/studies/{stored['ParentStudy']}/modify", {"Transcode": "1.2.3"}, 400)
    await _error(http, f"/instances/{stored['ID']}/modify", {"Transcode": "1.2.3"}, 400)


async def test_keep_labels(http: aiohttp.ClientSession) -> None:
    stored = await upload(http, testdata("PrivateTags.dcm"))
    for level, public_id in (("studies", stored["ParentStudy"]), ("series", stored["ParentSeries"]),
                             ("instances", stored["ID"])):
        async with http.put(f"/{level}/{public_id}/labels/from-{level}", data=b"") as resp:
            assert resp.status == 200, await resp.text()
    plain = await _post(http, f"/studies/{stored['ParentStudy']}/modify", {"Replace": {"StudyDescription": "a"}})
    assert (await _get(http, f"/studies/{plain['ID']}"))["Labels"] == []
    kept = await _post(http, f"/studies/{stored['ParentStudy']}/modify",
                       {"Replace": {"StudyDescription": "b"}, "KeepLabels": True})
    study = await _get(http, f"/studies/{kept['ID']}")
    assert study["Labels"] == ["from-studies"]
    assert (await _get(http, f"/series/{study['Series'][0]}"))["Labels"] == ["from-series"]
    instance = (await _get(http, f"/series/{study['Series'][0]}"))["Instances"][0]
    assert (await _get(http, f"/instances/{instance}"))["Labels"] == ["from-instances"]


async def test_study_modify_and_patient_tags(http: aiohttp.ClientSession) -> None:
    """PerformSanityChecks: patient tags change in a study only for the patient's only study, or to match the
    existing target patient exactly."""
    from tests.data.make_samples import make_instance
    for study_uid in ("1.2.3.100", "1.2.3.101"):
        async with http.post("/instances", data=make_instance(patient_id="PAT", patient_name="Doe^Jane",
                                                                 study_uid=study_uid)) as resp:
            stored = await resp.json()
    lonely = await upload(http, testdata("PrivateTags.dcm"))
    # The patient has two studies: renaming through one study is refused.
    err = await _error(http, f"/studies/{stored['ParentStudy']}/modify", {"Replace": {"PatientName": "Other"}}, 400)
    assert err["Details"].endswith("Failing tag: 0010,0010")
    # The only study of its patient: allowed.
    answer = await _post(http, f"/studies/{lonely['ParentStudy']}/modify", {"Replace": {"PatientName": "Renamed"}})
    assert (await _get(http, f"/studies/{answer['ID']}"))["PatientMainDicomTags"]["PatientName"] == "Renamed"


async def test_permissive(http: aiohttp.ClientSession, settings) -> None:
    """A source whose file is gone fails the job, or with Permissive is counted in FailedInstancesCount."""
    import pathlib
    a = await upload(http, testdata("Series", "Lena-1.dcm"))
    b = await upload(http, testdata("Series", "Lena-2.dcm"))
    uuid = (await _get(http, f"/instances/{b['ID']}"))["FileUuid"]
    next(pathlib.Path(settings.StorageDirectory).rglob(uuid)).unlink()
    body = {"Resources": [a["ID"], b["ID"]], "Replace": {"InstitutionName": "P"}}
    async with http.post("/tools/bulk-modify", json=body) as resp:
        assert resp.status == 404, await resp.text()
    answer = await _post(http, "/tools/bulk-modify", {**body, "Permissive": True})
    assert answer["FailedInstancesCount"] == 1 and answer["InstancesCount"] == 2
    assert [r["Type"] for r in answer["Resources"]].count("Instance") == 1


async def test_changes_logged_by_a_modification(http: aiohttp.ClientSession) -> None:
    """The new resources are logged like any upload (real Orthanc 1.10.1 logs no Modified*/Anonymized* change)."""
    stored = await upload(http, testdata("PrivateTags.dcm"))
    last = (await _get(http, "/changes?last"))["Last"]
    await _post(http, f"/studies/{stored['ParentStudy']}/modify", {"Replace": {"StudyDescription": "c"}})
    changes = (await _get(http, f"/changes?since={last}"))["Changes"]
    kinds = [(c["ChangeType"], c["ResourceType"]) for c in changes if not c["ChangeType"].startswith("Stable")]
    assert kinds == [("NewInstance", "Instance"), ("NewSeries", "Series"), ("NewStudy", "Study")]


async def test_lossy_transcode_keeps_the_modified_sop_instance_uid(http: aiohttp.ClientSession) -> None:
    """A lossy `Transcode` (JPEG baseline) makes a new SOPInstanceUID; the modified one is put back, by the job and
    by the single-instance route, and the stored copy's metadata describe the file as written."""
    from orthanc_lite.dicom.parse import parse_instance
    stored = await upload(http, testdata("TransferSyntaxes", "1.2.840.10008.1.2.1.dcm"))
    original_sop = (await _get(http, f"/instances/{stored['ID']}"))["MainDicomTags"]["SOPInstanceUID"]
    body = {"Replace": {"StudyDescription": "lossy"}, "Keep": ["SOPInstanceUID"], "Force": True,
            "Transcode": "1.2.840.10008.1.2.4.50", "LossyQuality": 80}
    answer = await _post(http, f"/studies/{stored['ParentStudy']}/modify", body)
    [instance] = await _get(http, f"/studies/{answer['ID']}/instances")
    async with http.get(f"/instances/{instance['ID']}/file") as resp:
        parsed = await asyncio.to_thread(parse_instance, await resp.read())
    assert parsed.transfer_syntax == "1.2.840.10008.1.2.4.50" and parsed.sop_uid == original_sop
    assert parsed.instance_public_id == instance["ID"] and instance["MainDicomTags"]["SOPInstanceUID"] == original_sop
    meta = await _get(http, f"/instances/{instance['ID']}/metadata?expand")
    assert meta["TransferSyntax"] == parsed.transfer_syntax
    assert meta.get("PixelDataOffset") == str(parsed.pixel_data_offset)
    async with http.post(f"/instances/{stored['ID']}/modify", json=body) as resp:
        assert resp.status == 200
        single = await asyncio.to_thread(parse_instance, await resp.read())
    assert single.transfer_syntax == "1.2.840.10008.1.2.4.50" and single.sop_uid == original_sop
