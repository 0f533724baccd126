"""The DICOMweb client ({root}servers...) against real Orthanc with its DICOMweb plugin as the remote server."""

from __future__ import annotations

import json
import pathlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import requests

import orthanc_lite
from orthanc_lite.config import Settings, load
from tests.conftest import testdata, upload
from tests.e2e.orthanc_peer import ORTHANC_AVAILABLE, SKIP_REASON, ServerProcess, free_port, start_orthanc

pytestmark = pytest.mark.skipif(not ORTHANC_AVAILABLE, reason=SKIP_REASON)

SERIES = [testdata("Series", f"Lena-{i}.dcm") for i in (1, 2, 3)]


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Real Orthanc with the DICOMweb plugin: the remote DICOMweb server of every test here."""
    with start_orthanc(tmp_path_factory.mktemp("remote"), plugins=True) as peer:
        yield peer


@pytest.fixture
def clean_remote(remote: ServerProcess) -> ServerProcess:
    for study in requests.get(remote.url + "/studies", timeout=10).json():
        requests.delete(f"{remote.url}/studies/{study}", timeout=10)
    return remote


def _settings(tmp_path: pathlib.Path, dicomweb: dict[str, object]) -> Settings:
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"DicomWeb": dicomweb}))
    return load(cfg).replace(StorageDirectory=str(tmp_path / "storage"), HttpPort=0, DicomPort=0,
                             RemoteAccessAllowed=True, AuthenticationEnabled=False)


@pytest.fixture
async def client(tmp_path: pathlib.Path, clean_remote: ServerProcess) -> AsyncIterator[aiohttp.ClientSession]:
    """orthanc_lite whose DicomWeb.Servers has "sample" = the real Orthanc (with credentials it ignores)."""
    settings = _settings(tmp_path, {"Servers": {
        "sample": {"Url": clean_remote.url + "/dicom-web", "Username": "alice", "Password": "secret",
                   "HasDelete": True},
        "down": [f"http://127.0.0.1:{free_port()}/dicom-web/"],
    }})
    async with orthanc_lite.serve(settings, host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as session:
        yield session


async def test_servers_are_listed_with_their_operations(client: aiohttp.ClientSession,
                                                        clean_remote: ServerProcess) -> None:
    async with client.get("/dicom-web/servers") as resp:
        assert await resp.json() == ["down", "sample"]
    async with client.get("/dicom-web/servers?expand") as resp:
        sample = (await resp.json())["sample"]
    assert sample["Url"] == clean_remote.url + "/dicom-web/"
    assert sample["Username"] == "alice"
    assert sample["Password"] is None  # never shown
    assert sample["HasDelete"] == "1"
    async with client.get("/dicom-web/servers/sample") as resp:
        assert sorted(await resp.json()) == ["delete", "get", "qido", "retrieve", "stow", "wado"]
    async with client.get("/dicom-web/servers/down") as resp:
        assert sorted(await resp.json()) == ["get", "qido", "retrieve", "stow", "wado"]
    async with client.get("/dicom-web/servers/nope") as resp:
        assert resp.status == 404


async def test_put_and_delete_server(client: aiohttp.ClientSession) -> None:
    async with client.put("/dicom-web/servers/hello", json={"Url": "http://localhost:1/dw",
                                                            "HttpHeaders": {"X-Token": "t"}}) as resp:
        assert resp.status == 200 and await resp.json() == {}
    async with client.get("/dicom-web/servers?expand") as resp:
        hello = (await resp.json())["hello"]
    assert hello["Url"] == "http://localhost:1/dw/" and hello["HttpHeaders"] == ["X-Token"]
    async with client.put("/dicom-web/servers/bad", json={"Url": "ftp://x"}) as resp:
        assert resp.status == 400
    async with client.delete("/dicom-web/servers/hello") as resp:
        assert resp.status == 200
    async with client.get("/dicom-web/servers") as resp:
        assert "hello" not in await resp.json()
    async with client.delete("/dicom-web/servers/hello") as resp:
        assert resp.status == 404


async def test_servers_in_database_survive_a_restart(tmp_path: pathlib.Path) -> None:
    settings = _settings(tmp_path, {"ServersInDatabase": True})
    for expected in ([], ["kept"]):
        async with orthanc_lite.serve(settings, host="127.0.0.1") as srv, \
                aiohttp.ClientSession(base_url=srv.url) as session:
            async with session.get("/dicom-web/servers") as resp:
                assert await resp.json() == expected
            async with session.put("/dicom-web/servers/kept", json=["http://localhost:2/"]) as resp:
                assert resp.status == 200


async def test_stow_sends_every_instance_of_a_study(client: aiohttp.ClientSession,
                                                    clean_remote: ServerProcess) -> None:
    uploaded = [await upload(client, path) for path in SERIES]
    study = uploaded[0]["ParentStudy"]
    async with client.post("/dicom-web/servers/sample/stow", json={"Resources": [study]}) as resp:
        assert resp.status == 200, await resp.text()
        content = await resp.json()
    assert content == {"InstancesCount": "3", "NetworkSizeMB": "0", "Server": "sample",
                       "Resources": {"Patients": [], "Studies": [study], "Series": [], "Instances": []}}
    remote_instances = requests.get(clean_remote.url + "/instances", timeout=10).json()
    assert sorted(remote_instances) == sorted(u["ID"] for u in uploaded)  # same files, same Orthanc IDs


async def test_stow_of_unknown_resource_and_to_a_down_server_fail_cleanly(client: aiohttp.ClientSession) -> None:
    async with client.post("/dicom-web/servers/sample/stow", json={"Resources": ["nope"]}) as resp:
        assert resp.status == 404
    instance = (await upload(client, SERIES[0]))["ID"]
    async with client.post("/dicom-web/servers/down/stow", json={"Resources": [instance]}) as resp:
        assert resp.status == 500
        error = await resp.json()
    assert error["OrthancError"] == "Error in the network protocol"
    assert "down" in error["Details"]
    async with client.post("/dicom-web/servers/sample/stow", json={"Resources": "x"}) as resp:
        assert resp.status == 400


async def test_asynchronous_stow_is_a_job(client: aiohttp.ClientSession, clean_remote: ServerProcess) -> None:
    instance = (await upload(client, SERIES[0]))["ID"]
    async with client.post("/dicom-web/servers/sample/stow",
                           json={"Resources": [instance], "Synchronous": False}) as resp:
        answer = await resp.json()
    assert answer["Path"] == f".././../jobs/{answer['ID']}"
    job = await _wait_job(client, answer["ID"])
    assert job["Type"] == "DicomWebStowClient" and job["State"] == "Success"
    assert job["Content"]["Resources"]["Instances"] == [instance]
    assert requests.get(clean_remote.url + "/instances", timeout=10).json() == [instance]


async def _wait_job(client: aiohttp.ClientSession, job_id: str) -> dict[str, object]:
    for _ in range(200):
        async with client.get(f"/jobs/{job_id}") as resp:
            job = await resp.json()
        if job["State"] in ("Success", "Failure"):
            return job  # type: ignore[no-any-return]
        async with client.get("/system"):  # a round trip instead of a fixed sleep
            pass
    raise AssertionError(f"job {job_id} did not finish")


def _remote_upload(remote: ServerProcess, paths: list[pathlib.Path]) -> str:
    study = ""
    for path in paths:
        study = requests.post(remote.url + "/instances", data=path.read_bytes(), timeout=10).json()["ParentStudy"]
    return str(requests.get(f"{remote.url}/studies/{study}", timeout=10).json()["MainDicomTags"]["StudyInstanceUID"])


async def test_retrieve_stores_what_the_remote_sends(client: aiohttp.ClientSession,
                                                     clean_remote: ServerProcess) -> None:
    study_uid = _remote_upload(clean_remote, SERIES)
    async with client.post("/dicom-web/servers/sample/retrieve",
                           json={"Resources": [{"Study": study_uid}]}) as resp:
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {"NetworkUsageMB": "0", "ReceivedInstancesCount": "3"}
    async with client.get("/instances?expand") as resp:
        instances = await resp.json()
    assert sorted(i["ID"] for i in instances) == sorted(requests.get(clean_remote.url + "/instances",
                                                                     timeout=10).json())
    async with client.get(f"/instances/{instances[0]['ID']}/metadata/Origin") as resp:
        assert await resp.text() == "Plugins"


async def test_retrieve_errors(client: aiohttp.ClientSession, clean_remote: ServerProcess) -> None:
    async with client.post("/dicom-web/servers/sample/retrieve",
                           json={"Resources": [{"Series": "1.2.3"}]}) as resp:
        assert resp.status == 400  # "Study" is mandatory
    async with client.post("/dicom-web/servers/sample/retrieve",
                           json={"Resources": [{"Study": "1.2.3.4.5"}]}) as resp:
        assert resp.status in (404, 500)  # the remote has no such study
    async with client.post("/dicom-web/servers/down/retrieve", json={"Resources": [{"Study": "1.2"}]}) as resp:
        assert resp.status == 500
    async with client.get("/instances") as resp:
        assert await resp.json() == []


async def test_wado_is_asynchronous_by_default(client: aiohttp.ClientSession, clean_remote: ServerProcess) -> None:
    study_uid = _remote_upload(clean_remote, SERIES[:2])
    async with client.post("/dicom-web/servers/sample/wado", json={"Uri": f"/studies/{study_uid}"}) as resp:
        answer = await resp.json()
    job = await _wait_job(client, answer["ID"])
    assert job["Type"] == "DicomWebWadoRetrieveClient" and job["State"] == "Success", job
    async with client.get("/instances") as resp:
        assert len(await resp.json()) == 2


async def test_get_and_qido_proxy_the_remote(client: aiohttp.ClientSession, clean_remote: ServerProcess) -> None:
    study_uid = _remote_upload(clean_remote, SERIES[:1])
    async with client.post("/dicom-web/servers/sample/get", json={"Uri": "/studies"}) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/dicom+json"
        studies = await resp.json(content_type=None)
    assert studies[0]["0020000D"]["Value"] == [study_uid]
    async with client.post("/dicom-web/servers/sample/get",
                           json={"Uri": "/studies", "Arguments": {"StudyInstanceUID": "9.9"}}) as resp:
        assert await resp.json(content_type=None) == []
    async with client.post("/dicom-web/servers/sample/qido", json={"Uri": "/studies"}) as resp:
        simplified = await resp.json()
    assert simplified[0]["0020000D"] == {"Group": 0x20, "Element": 0x0D, "Name": "StudyInstanceUID", "vr": "UI",
                                         "Value": study_uid}
    async with client.post("/dicom-web/servers/sample/get", json={"NoUri": 1}) as resp:
        assert resp.status == 400
    async with client.post("/dicom-web/servers/down/get", json={"Uri": "/studies"}) as resp:
        assert resp.status == 500


async def test_delete_needs_has_delete(client: aiohttp.ClientSession) -> None:
    async with client.post("/dicom-web/servers/down/delete",
                           json={"Level": "Study", "StudyInstanceUID": "1.2"}) as resp:
        assert resp.status == 400
    async with client.post("/dicom-web/servers/sample/delete", json={"Level": "Nope"}) as resp:
        assert resp.status == 400


async def test_credentials_are_sent(tmp_path: pathlib.Path) -> None:
    """A remote that requires HTTP Basic (here a second orthanc_lite, whose /system serves as the URI): the
    configured Username/Password get through, wrong ones give 401."""
    secured_cfg = tmp_path / "secured.json"
    secured_cfg.write_text(json.dumps({"AuthenticationEnabled": True, "RegisteredUsers": {"alice": "secret"}}))
    secured = load(secured_cfg).replace(StorageDirectory=str(tmp_path / "secured"), HttpPort=0, DicomPort=0,
                                        RemoteAccessAllowed=True)
    async with orthanc_lite.serve(secured, host="127.0.0.1") as remote_srv:
        base = remote_srv.url + "/"
        settings = _settings(tmp_path, {"Servers": {"good": [base, "alice", "secret"], "bad": [base, "alice", "no"]}})
        async with orthanc_lite.serve(settings, host="127.0.0.1") as srv, \
                aiohttp.ClientSession(base_url=srv.url) as session:
            async with session.post("/dicom-web/servers/good/get", json={"Uri": "/system"}) as resp:
                assert resp.status == 200 and (await resp.json(content_type=None))["Name"]
            async with session.post("/dicom-web/servers/bad/get", json={"Uri": "/system"}) as resp:
                assert resp.status == 401
