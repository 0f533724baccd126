"""Orthanc peers: /peers/{id}/store|store-straight|system against a second orthanc_lite (HTTP with Basic
credentials and extra headers, HTTPS with a test CA and a client certificate), and remotes that fail."""

from __future__ import annotations

import asyncio
import base64
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import orthanc_lite
from orthanc_lite.config import Settings
from tests.data.make_samples import make_instance, make_series
from tests.dimse.dimse_helpers import free_port
from tests.jobs.test_store_scu import call, upload_all, wait_job


AUTH = {"Authorization": "Basic " + base64.b64encode(b"alice:secret").decode()}


@pytest.fixture
async def second(settings: Settings, tmp_path: pathlib.Path) -> AsyncIterator[tuple[orthanc_lite.Server, Any]]:
    other = settings.replace(StorageDirectory=str(tmp_path / "second"), AuthenticationEnabled=True,
                             RegisteredUsers={"alice": "secret"})
    async with orthanc_lite.serve(other, host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url, headers=AUTH) as http2:
        yield srv, http2


async def test_store_to_peer(server: orthanc_lite.Server, http: aiohttp.ClientSession, second: Any) -> None:
    peer, http2 = second
    await call(http, "PUT", "/peers/second", {"Url": peer.url, "Username": "alice", "Password": "secret",
                                              "HttpHeaders": {"X-Test": "1"}})
    status, system = await call(http, "GET", "/peers/second/system")
    assert status == 200 and "ApiVersion" in system
    stored = await upload_all(http, [*make_series(3, patient_id="PEER"), make_instance("OTHER")])
    study = stored[0]["ParentStudy"]
    status, answer = await call(http, "POST", "/peers/second/store", study)
    assert status == 200, answer
    size = int(answer.pop("Size"))
    assert size > 3 * 1000
    assert answer == {"Description": "REST API", "FailedInstancesCount": 0, "InstancesCount": 3,
                      "ParentResources": [study], "Compress": False, "SizeMB": 0, "Peer": (await call(
                          http, "GET", "/peers/second/configuration"))[1]}
    assert sorted((await call(http2, "GET", "/instances"))[1]) == sorted(s["ID"] for s in stored[:3])

    # gzip, asynchronous, another level
    status, answer = await call(http, "POST", "/peers/second/store",
                                {"Resources": [stored[3]["ID"]], "Compress": True, "Asynchronous": True})
    info = await wait_job(http, answer["ID"])
    assert info["State"] == "Success" and info["Type"] == "OrthancPeerStore"
    assert info["Content"]["Compress"] is True and 0 < int(info["Content"]["Size"])
    assert stored[3]["ID"] in (await call(http2, "GET", "/instances"))[1]

    # store-straight: the peer's answer comes back, nothing is stored here
    data = make_instance("STRAIGHT")
    status, answer = await call(http, "POST", "/peers/second/store-straight", data=data)
    assert status == 200 and answer["Status"] == "Success"
    assert (await call(http2, "GET", f"/instances/{answer['ID']}"))[0] == 200
    assert (await call(http, "GET", f"/instances/{answer['ID']}"))[0] == 404


async def test_simple_peer_in_content(server: orthanc_lite.Server, http: aiohttp.ClientSession, second: Any) -> None:
    peer, _ = second
    await call(http, "PUT", "/peers/short", [peer.url, "alice", "secret"])
    stored = await upload_all(http, [make_instance()])
    status, answer = await call(http, "POST", "/peers/short/store", [stored[0]["ID"]])
    assert status == 200 and answer["Peer"] == [peer.url + "/", "alice", ""]


async def test_peer_failures(server: orthanc_lite.Server, http: aiohttp.ClientSession, second: Any) -> None:
    peer, _ = second
    stored = await upload_all(http, [make_instance()])
    ids = [stored[0]["ID"]]
    assert (await call(http, "POST", "/peers/nope/store", ids))[0] == 404
    assert (await call(http, "GET", "/peers/nope/system"))[0] == 404

    await call(http, "PUT", "/peers/badpass", {"Url": peer.url, "Username": "alice", "Password": "wrong"})
    assert (await call(http, "GET", "/peers/badpass/system"))[0] == 401
    status, error = await call(http, "POST", "/peers/badpass/store", ids)
    assert status == 401 and error["OrthancStatus"] == 29

    await call(http, "PUT", "/peers/gone", [f"http://127.0.0.1:{free_port()}/"])
    status, error = await call(http, "GET", "/peers/gone/system")
    assert status == 500 and error["OrthancStatus"] == 9
    status, answer = await call(http, "POST", "/peers/gone/store", {"Resources": ids, "Asynchronous": True})
    info = await wait_job(http, answer["ID"])
    assert info["State"] == "Failure" and info["ErrorCode"] == 9 and "gone" in info["ErrorDetails"]
    status, error = await call(http, "POST", "/peers/gone/store-straight", data=make_instance())
    assert status == 500 and error["Details"] == "Cannot send DICOM to remote peer: gone"


@pytest.fixture
async def broken_peer() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """An HTTP server answering 500 to POST /instances, and one whose answer never comes."""
    started = asyncio.Event()
    release = asyncio.Event()

    async def instances(request: web.Request) -> web.Response:
        await request.read()
        if request.query.get("hang") or request.path.startswith("/hang/"):
            started.set()
            await release.wait()
        return web.Response(status=500, text="broken")

    app = web.Application()
    app.router.add_post("/instances", instances)
    app.router.add_post("/hang/instances", instances)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/", started
    finally:
        release.set()
        await runner.cleanup()


async def test_peer_answering_500_and_hanging(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                             broken_peer: tuple[str, asyncio.Event]) -> None:
    url, started = broken_peer
    stored = await upload_all(http, make_series(2))
    ids = [stored[0]["ParentSeries"]]
    await call(http, "PUT", "/peers/broken", [url])
    status, error = await call(http, "POST", "/peers/broken/store", ids)
    assert status == 500 and error["OrthancStatus"] == 9 and "HTTP status 500" in error["Details"]
    status, answer = await call(http, "POST", "/peers/broken/store", {"Resources": ids, "Permissive": True})
    assert status == 200 and answer["FailedInstancesCount"] == 2  # permissive: counted, not fatal

    await call(http, "PUT", "/peers/hang", {"Url": url + "hang/", "Timeout": 1})
    loop = asyncio.get_running_loop()
    begin = loop.time()
    status, error = await call(http, "POST", "/peers/hang/store", ids)
    assert status == 500 and error["OrthancStatus"] == 9 and loop.time() - begin < 5

    await call(http, "PUT", "/peers/hang", {"Url": url + "hang/"})  # HttpTimeout (60 s): cancel instead
    started.clear()
    status, answer = await call(http, "POST", "/peers/hang/store", {"Resources": ids, "Asynchronous": True})
    await asyncio.wait_for(started.wait(), 10)
    begin = loop.time()
    assert (await call(http, "POST", f"/jobs/{answer['ID']}/cancel"))[0] == 200
    info = await wait_job(http, answer["ID"])
    assert loop.time() - begin < 1 and info["ErrorCode"] == 37


async def _openssl(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec("openssl", *args, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


async def make_pki(folder: pathlib.Path) -> dict[str, str]:
    """A test CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    f = {name: str(folder / name) for name in ("ca.key", "ca.pem", "server.key", "server.csr", "server.crt",
                                               "server.pem", "client.key", "client.csr", "client.crt", "ext.cnf")}
    await _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f["ca.key"], "-out", f["ca.pem"],
                   "-days", "2", "-subj", "/CN=Test CA")
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for who in ("server", "client"):
        await _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f[f"{who}.key"], "-out", f[f"{who}.csr"],
                       "-subj", f"/CN={who}")
        await _openssl("x509", "-req", "-in", f[f"{who}.csr"], "-CA", f["ca.pem"], "-CAkey", f["ca.key"],
                       "-CAcreateserial", "-out", f[f"{who}.crt"], "-days", "2", "-extfile", f["ext.cnf"])
    (folder / "server.pem").write_text((folder / "server.crt").read_text() + (folder / "server.key").read_text())
    return f


async def test_store_to_https_peer(settings: Settings, tmp_path: pathlib.Path) -> None:
    pki = await make_pki(tmp_path)
    remote = settings.replace(StorageDirectory=str(tmp_path / "remote"), SslEnabled=True,
                              SslCertificate=pki["server.pem"], SslVerifyPeers=True,
                              SslTrustedClientCertificates=pki["ca.pem"])
    local = settings.replace(HttpsCACertificates=pki["ca.pem"])
    async with orthanc_lite.serve(remote, host="127.0.0.1") as peer, \
            orthanc_lite.serve(local, host="127.0.0.1") as server, \
            aiohttp.ClientSession(base_url=server.url) as http:
        assert peer.url.startswith("https://")
        stored = await upload_all(http, [make_instance("TLS")])
        await call(http, "PUT", "/peers/tls", {"Url": peer.url, "CertificateFile": pki["client.crt"],
                                               "CertificateKeyFile": pki["client.key"]})
        status, answer = await call(http, "POST", "/peers/tls/store", [stored[0]["ID"]])
        assert status == 200 and answer["InstancesCount"] == 1 and answer["FailedInstancesCount"] == 0
        assert (await call(http, "GET", "/peers/tls/system"))[0] == 200
        # Without the client certificate the remote refuses the TLS handshake.
        await call(http, "PUT", "/peers/anonymous", {"Url": peer.url})
        status, error = await call(http, "POST", "/peers/anonymous/store", [stored[0]["ID"]])
        assert status == 500 and error["OrthancStatus"] == 9
    # And a CA we do not trust: the server certificate is rejected.
    async with orthanc_lite.serve(remote, host="127.0.0.1") as peer, \
            orthanc_lite.serve(settings, host="127.0.0.1") as server, \
            aiohttp.ClientSession(base_url=server.url) as http:
        await call(http, "PUT", "/peers/tls", {"Url": peer.url, "CertificateFile": pki["client.crt"],
                                               "CertificateKeyFile": pki["client.key"]})
        status, error = await call(http, "GET", "/peers/tls/system")
        assert status == 500 and "certificate" in error["Details"].lower()
