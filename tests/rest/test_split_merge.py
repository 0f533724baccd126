"""POST /studies/{id}/split and /studies/{id}/merge."""

from __future__ import annotations

import aiohttp

from tests.conftest import testdata, upload


async def _post(http: aiohttp.ClientSession, path: str, body: dict, status: int = 200) -> dict:
    async with http.post(path, json=body) as resp:
        assert resp.status == status, await resp.text()
        return await resp.json()


async def _get(http: aiohttp.ClientSession, path: str) -> dict:
    async with http.get(path) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_split_moves_instances_into_a_new_study(http: aiohttp.ClientSession) -> None:
    stored = [await upload(http, testdata("Series", f"Lena-{i}.dcm")) for i in (1, 2, 3)]
    study = stored[0]["ParentStudy"]
    answer = await _post(http, f"/studies/{study}/split",
                         {"Instances": [stored[0]["ID"]], "Replace": {"StudyDescription": "split"}})
    assert answer["InstancesCount"] == 1 and answer["FailedInstancesCount"] == 0
    target = await _get(http, f"/studies/{answer['TargetStudy']}")
    assert target["MainDicomTags"]["StudyInstanceUID"] == answer["TargetStudyUID"]
    assert target["MainDicomTags"]["StudyDescription"] == "split"
    assert target["ParentPatient"] == stored[0]["ParentPatient"]
    assert len(await _get(http, "/instances")) == 3  # KeepSource defaults to false: the source instance moved
    async with http.get(f"/instances/{stored[0]['ID']}") as resp:
        assert resp.status == 404
    error = await _post(http, f"/studies/{study}/split", {"Instances": [stored[1]["ID"]],
                                                          "Replace": {"Modality": "x"}}, 400)
    assert error["Details"] == ("Cannot modify the following tag while splitting a study (not in the patient/study "
                                "modules): Modality (0008,0060)")
    error = await _post(http, f"/studies/{study}/split", {}, 400)
    assert error["Details"] == 'Both the "Series" and the "Instances" fields are missing'
    await _post(http, f"/studies/{study}/split", {"Series": [answer["TargetStudy"]]}, 404)
    kept = await _post(http, f"/studies/{study}/split", {"Series": [stored[1]["ParentSeries"]], "KeepSource": True})
    assert kept["InstancesCount"] == 2
    assert len(await _get(http, "/instances")) == 5


async def test_merge_moves_a_study_into_another(http: aiohttp.ClientSession) -> None:
    lena = await upload(http, testdata("Series", "Lena-1.dcm"))
    other = await upload(http, testdata("PrivateTags.dcm"))
    target = lena["ParentStudy"]
    answer = await _post(http, f"/studies/{target}/merge", {"Resources": [other["ParentStudy"]]})
    assert answer == {"Description": "REST API", "FailedInstancesCount": 0, "InstancesCount": 1,
                      "TargetStudy": target}
    study = await _get(http, f"/studies/{target}")
    assert len(study["Series"]) == 2
    assert len(await _get(http, "/studies")) == 1  # the source study is gone (KeepSource false)
    merged_series = [s for s in study["Series"] if s != lena["ParentSeries"]][0]
    instance = (await _get(http, f"/series/{merged_series}"))["Instances"][0]
    tags = await _get(http, f"/instances/{instance}/simplified-tags")
    lena_tags = await _get(http, f"/instances/{lena['ID']}/simplified-tags")
    assert tags["PatientID"] == lena_tags["PatientID"] and tags["PatientName"] == lena_tags["PatientName"]
    assert tags["StudyInstanceUID"] == lena_tags["StudyInstanceUID"]
    await _post(http, f"/studies/{target}/merge", {"Resources": ["nope"]}, 404)
    await _post(http, f"/studies/{target}/merge", {}, 400)
