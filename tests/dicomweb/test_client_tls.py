"""HTTPS between two orthanc_lite servers: the DICOMweb client checks the server with HttpsCACertificates and
presents its client certificate (CertificateFile/CertificateKeyFile); the server requires it (SslVerifyPeers)."""

from __future__ import annotations

import json
import pathlib
import subprocess

import aiohttp
import pytest

import orthanc_lite
from orthanc_lite.config import Settings, load


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    """A test CA, a server certificate for 127.0.0.1 and a client certificate, both signed by the CA."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=Test CA",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    for name, extra in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(d / f"{name}.key"),
                 "-out", str(d / f"{name}.csr"))
        (d / f"{name}.ext").write_text(extra + "\n")
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
                 "-CAcreateserial", "-days", "1", "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.crt"))
    (d / "server.pem").write_bytes((d / "server.crt").read_bytes() + (d / "server.key").read_bytes())
    return {name: d / name for name in ("ca.crt", "server.pem", "client.crt", "client.key")}


def _settings(tmp_path: pathlib.Path, name: str, cfg: dict[str, object]) -> Settings:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return load(path).replace(StorageDirectory=str(tmp_path / name), HttpPort=0, DicomPort=0,
                              RemoteAccessAllowed=True, AuthenticationEnabled=False)


async def test_client_certificate_and_ca_checks(tmp_path: pathlib.Path, pki: dict[str, pathlib.Path]) -> None:
    remote_settings = _settings(tmp_path, "remote", {
        "SslEnabled": True, "SslCertificate": str(pki["server.pem"]), "SslVerifyPeers": True,
        "SslTrustedClientCertificates": str(pki["ca.crt"])})
    async with orthanc_lite.serve(remote_settings, host="127.0.0.1") as remote:
        assert remote.url.startswith("https://")
        base = remote.url + "/"
        servers = {"withcert": {"Url": base, "CertificateFile": str(pki["client.crt"]),
                                "CertificateKeyFile": str(pki["client.key"])},
                   "nocert": [base]}
        trusting = _settings(tmp_path, "trusting", {"HttpsCACertificates": str(pki["ca.crt"]),
                                                     "DicomWeb": {"Servers": servers}})
        untrusting = _settings(tmp_path, "untrusting", {"DicomWeb": {"Servers": servers}})
        async with orthanc_lite.serve(trusting, host="127.0.0.1") as srv, \
                aiohttp.ClientSession(base_url=srv.url) as http:
            async with http.post("/dicom-web/servers/withcert/get", json={"Uri": "/system"}) as resp:
                assert resp.status == 200, await resp.text()
                # the remote's /system came through; remote access without authentication is reported insecure
                # (Orthanc does not count HTTPS in IsHttpServerSecure)
                assert (await resp.json(content_type=None))["IsHttpServerSecure"] is False
            async with http.post("/dicom-web/servers/nocert/get", json={"Uri": "/system"}) as resp:
                assert resp.status == 500  # the remote refuses the handshake without a client certificate
                assert (await resp.json())["OrthancError"] == "Error in the network protocol"
        async with orthanc_lite.serve(untrusting, host="127.0.0.1") as srv, \
                aiohttp.ClientSession(base_url=srv.url) as http:
            async with http.post("/dicom-web/servers/withcert/get", json={"Uri": "/system"}) as resp:
                assert resp.status == 500  # the remote's certificate is not signed by a trusted CA
