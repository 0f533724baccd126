"""Authentication, RemoteAccessAllowed and HTTPS, as Orthanc does them."""

from __future__ import annotations

import ssl
import subprocess

import aiohttp
import pytest

import orthanc_lite
from orthanc_lite.config import Settings


async def test_basic_auth(settings: Settings) -> None:
    cfg = settings.replace(AuthenticationEnabled=True, RegisteredUsers={"alice": "secret"})
    async with orthanc_lite.serve(cfg, host="127.0.0.1") as srv:
        async with aiohttp.ClientSession(base_url=srv.url) as http:
            async with http.get("/system") as resp:
                assert resp.status == 401
                assert resp.headers["WWW-Authenticate"] == 'Basic realm="Orthanc Secure Area"'
                assert "Content-Type" not in resp.headers and await resp.read() == b""  # as Orthanc 1.10-1.13
            async with http.get("/system", headers={"Authorization": aiohttp.encode_basic_auth("alice", "wrong")}) as resp:
                assert resp.status == 401
            async with http.get("/system", headers={"Authorization": aiohttp.encode_basic_auth("alice", "secret")}) as resp:
                assert resp.status == 200


async def test_remote_access_refused_from_non_loopback(settings: Settings) -> None:
    import socket

    # Find an address of this machine that is not loopback; without one the rule cannot be shown here.
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # no packet is sent: UDP connect only picks a route
        address = probe.getsockname()[0]
    except OSError:
        pytest.skip("this machine has no non-loopback IPv4 address")
    finally:
        probe.close()
    if address.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address")
    cfg = settings.replace(RemoteAccessAllowed=False, AuthenticationEnabled=False)
    async with orthanc_lite.serve(cfg, host="0.0.0.0") as srv:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://{address}:{srv.http_port}/system") as resp:
                assert resp.status == 401
            async with http.get(f"http://127.0.0.1:{srv.http_port}/system") as resp:
                assert resp.status == 200


async def test_https_on_the_same_port(settings: Settings, tmp_path) -> None:
    pem = tmp_path / "certificate.pem"
    key = tmp_path / "key.pem"
    crt = tmp_path / "crt.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    pem.write_bytes(crt.read_bytes() + key.read_bytes())  # Orthanc's SslCertificate: certificate + key in one PEM
    cfg = settings.replace(SslEnabled=True, SslCertificate=str(pem))
    async with orthanc_lite.serve(cfg, host="127.0.0.1") as srv:
        assert srv.url.startswith("https://")
        client_ctx = ssl.create_default_context(cafile=str(crt))
        client_ctx.check_hostname = False
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{srv.url}/system", ssl=client_ctx) as resp:
                assert resp.status == 200
                # Remote access without authentication: insecure even over HTTPS, as Orthanc reports it.
                assert (await resp.json())["IsHttpServerSecure"] is False
