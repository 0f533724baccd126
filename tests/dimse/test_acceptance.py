"""Association acceptance as Orthanc: DicomModalities, DicomAlwaysAllow*, StrictAetComparison,
DicomCheckModalityHost, DicomCheckCalledAet, per-modality Allow*; transfer syntaxes and unknown SOP classes,
changed live over REST."""

from __future__ import annotations

import io
import pathlib
from collections.abc import AsyncIterator

import aiohttp
import pydicom
import pytest

import orthanc_lite
from orthanc_lite.config import Settings
from orthanc_lite.dicom.transfer_syntaxes import accepted_syntaxes
from orthanc_lite.dimse import policy
from tests.conftest import TESTDATA
from tests.data.make_samples import make_instance
from tests.dimse.dimse_helpers import requires_dcmtk, run_tool, storescu_profile

pytestmark = requires_dcmtk

CLOSED = {"DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False, "DicomAlwaysAllowFind": False,
              "DicomAlwaysAllowFindWorklist": False, "DicomAlwaysAllowGet": False, "DicomAlwaysAllowMove": False}


@pytest.fixture
async def closed_server(settings: Settings) -> AsyncIterator[orthanc_lite.Server]:
    """Nothing always allowed; two known modalities, one limited to C-ECHO."""
    s = settings.replace(**CLOSED, DicomModalities={
        "known": ["KNOWN", "127.0.0.1", 104],
        "echoonly": {"AET": "ECHOONLY", "Host": "127.0.0.1", "Port": 104, "AllowStore": False,
                     "AllowFind": False},
        "elsewhere": {"AET": "FARAWAY", "Host": "10.9.9.9", "Port": 104},
    })
    async with orthanc_lite.serve(s, host="127.0.0.1") as srv:
        yield srv


async def _echo(port: int, aet: str, called: str = "ORTHANC") -> tuple[bool, str]:
    result = await run_tool("echoscu", "-aet", aet, "-aec", called, "127.0.0.1", str(port))
    return result.ok, result.output


async def test_unknown_calling_aet_is_rejected(closed_server: orthanc_lite.Server) -> None:
    ok, out = await _echo(closed_server.dicom_port, "STRANGER")
    assert not ok
    assert "Association Rejected" in out and "Calling AE Title Not Recognized" in out, out


async def test_known_aet_case_insensitive_by_default(closed_server: orthanc_lite.Server) -> None:
    assert (await _echo(closed_server.dicom_port, "KNOWN"))[0]
    assert (await _echo(closed_server.dicom_port, "known"))[0]


async def test_strict_aet_comparison(settings: Settings) -> None:
    s = settings.replace(**CLOSED, StrictAetComparison=True, DicomModalities={"known": ["KNOWN", "127.0.0.1", 104]})
    async with orthanc_lite.serve(s, host="127.0.0.1") as srv:
        assert (await _echo(srv.dicom_port, "KNOWN"))[0]
        assert not (await _echo(srv.dicom_port, "known"))[0]


async def test_check_modality_host(settings: Settings) -> None:
    s = settings.replace(**CLOSED, DicomCheckModalityHost=True, DicomModalities={
        "here": ["HERE", "127.0.0.1", 104], "there": ["THERE", "10.9.9.9", 104]})
    async with orthanc_lite.serve(s, host="127.0.0.1") as srv:
        assert (await _echo(srv.dicom_port, "HERE"))[0]
        ok, out = await _echo(srv.dicom_port, "THERE")
        assert not ok and "Association Rejected" in out


async def test_check_called_aet(settings: Settings) -> None:
    async with orthanc_lite.serve(settings.replace(DicomCheckCalledAet=True), host="127.0.0.1") as srv:
        assert (await _echo(srv.dicom_port, "ANY", called="ORTHANC"))[0]
        ok, out = await _echo(srv.dicom_port, "ANY", called="SOMEONE")
        assert not ok and "Called AE Title Not Recognized" in out, out
    # without the check any called AET is fine
    async with orthanc_lite.serve(settings, host="127.0.0.1") as srv:
        assert (await _echo(srv.dicom_port, "ANY", called="SOMEONE"))[0]


async def test_always_allow_echo_lets_anyone_associate(settings: Settings, tmp_path: pathlib.Path) -> None:
    s = settings.replace(**{**CLOSED, "DicomAlwaysAllowEcho": True})
    async with orthanc_lite.serve(s, host="127.0.0.1") as srv:
        assert (await _echo(srv.dicom_port, "STRANGER"))[0]
        # ... but a C-STORE from that stranger is refused: the association is aborted, as in Orthanc
        f = tmp_path / "ct.dcm"
        f.write_bytes(make_instance("STRANGE"))
        result = await run_tool("storescu", "-aet", "STRANGER", "-aec", "ORTHANC", "127.0.0.1", str(srv.dicom_port), f)
        assert not result.ok
        assert "Aborted" in result.output or "abort" in result.output.lower(), result.output
        assert (await srv.context.index.statistics())["CountInstances"] == 0


async def test_per_modality_allow_flags(closed_server: orthanc_lite.Server, tmp_path: pathlib.Path) -> None:
    f = tmp_path / "x.dcm"
    f.write_bytes(make_instance("FLAGS"))
    port = str(closed_server.dicom_port)
    assert (await _echo(closed_server.dicom_port, "ECHOONLY"))[0]
    refused = await run_tool("storescu", "-aet", "ECHOONLY", "-aec", "ORTHANC", "127.0.0.1", port, f)
    assert not refused.ok
    stored = await run_tool("storescu", "-aet", "KNOWN", "-aec", "ORTHANC", "127.0.0.1", port, f)
    assert stored.ok, stored.output
    assert (await closed_server.context.index.statistics())["CountInstances"] == 1


async def test_modality_added_over_rest_is_accepted(closed_server: orthanc_lite.Server) -> None:
    assert not (await _echo(closed_server.dicom_port, "LATECOMER"))[0]
    async with aiohttp.ClientSession(base_url=closed_server.url) as http, \
            http.put("/modalities/late", json={"AET": "LATECOMER", "Host": "127.0.0.1", "Port": 104}) as resp:
        assert resp.status == 200, await resp.text()
    assert (await _echo(closed_server.dicom_port, "LATECOMER"))[0]


# -- transfer syntaxes and SOP classes ------------------------------------------------------------

JPEG = TESTDATA / "TransferSyntaxes" / "1.2.840.10008.1.2.4.50.dcm"
EXPLICIT = TESTDATA / "TransferSyntaxes" / "1.2.840.10008.1.2.1.dcm"


def _no_context(output: str) -> bool:
    return "No presentation context" in output or "No Acceptable Presentation Contexts" in output


async def _store_exact(port: int, f: pathlib.Path, tmp_path: pathlib.Path) -> tuple[bool, str]:
    profile = storescu_profile([f], tmp_path / f"{f.stem}.cfg")
    result = await run_tool("storescu", "-v", *profile, "-aec", "ORTHANC", "127.0.0.1", str(port), f)
    return result.ok, result.output


async def test_accepted_transfer_syntaxes_changed_live(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                                       tmp_path: pathlib.Path) -> None:
    async with http.put("/tools/accepted-transfer-syntaxes", json=["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]) as r:
        assert r.status == 200
        assert await r.json() == ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]
    ok, out = await _store_exact(server.dicom_port, JPEG, tmp_path)
    assert not ok and _no_context(out), out
    ok, out = await _store_exact(server.dicom_port, EXPLICIT, tmp_path)
    assert ok, out
    # wildcards
    async with http.put("/tools/accepted-transfer-syntaxes", data="1.2.840.10008.1.2.4.*") as r:
        assert r.status == 200
        listed = await r.json()  # the wildcard comes back expanded to UIDs, as Orthanc answers
        assert "1.2.840.10008.1.2.4.50" in listed and "1.2.840.10008.1.2.1" not in listed
    async with http.get("/tools/accepted-transfer-syntaxes") as r:
        assert await r.json() == listed
    ok, out = await _store_exact(server.dicom_port, JPEG, tmp_path)
    assert ok, out


async def test_legacy_transfer_syntax_switches(settings: Settings, tmp_path: pathlib.Path) -> None:
    async with orthanc_lite.serve(settings.replace(JpegTransferSyntaxAccepted=False), host="127.0.0.1") as srv:
        assert not (await _store_exact(srv.dicom_port, JPEG, tmp_path))[0]
        assert (await _store_exact(srv.dicom_port, EXPLICIT, tmp_path))[0]


async def test_unknown_sop_class_switch(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                        tmp_path: pathlib.Path) -> None:
    f = TESTDATA / "UnknownSopClassUid.dcm"
    ok, out = await _store_exact(server.dicom_port, f, tmp_path)
    assert not ok and _no_context(out), out
    async with http.put("/tools/unknown-sop-class-accepted", data="1") as r:
        assert r.status == 200
    ok, out = await _store_exact(server.dicom_port, f, tmp_path)
    assert ok, out
    assert (await server.context.index.statistics())["CountInstances"] == 1


async def test_accepted_and_rejected_sop_classes(settings: Settings, tmp_path: pathlib.Path) -> None:
    ct = tmp_path / "ct.dcm"
    ct.write_bytes(make_instance("CT1"))
    s = settings.replace(RejectedSopClasses=["1.2.840.10008.5.1.4.1.1.2"])
    async with orthanc_lite.serve(s, host="127.0.0.1") as srv:
        assert not (await _store_exact(srv.dicom_port, ct, tmp_path))[0]
    s = settings.replace(AcceptedSopClasses=["1.2.840.10008.5.1.4.1.1.*"])
    async with orthanc_lite.serve(s, host="127.0.0.1") as srv:
        assert (await _store_exact(srv.dicom_port, ct, tmp_path))[0]


# -- pure policy ----------------------------------------------------------------------------------


def test_wildcard_expansion_and_groups(settings: Settings) -> None:
    everything = accepted_syntaxes(["1.2.840.10008.1.*"], settings, configured=True)
    assert "1.2.840.10008.1.2.4.50" in everything and "1.2.840.10008.1.2" in everything
    only = accepted_syntaxes(["1.2.840.10008.1.2.?"], settings, configured=True)
    assert only == {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5"}
    no_jpeg = accepted_syntaxes(["1.2.840.10008.1.*"], settings.replace(JpegTransferSyntaxAccepted=False),
                                configured=True)
    assert "1.2.840.10008.1.2.4.50" not in no_jpeg and "1.2.840.10008.1.2.4.90" in no_jpeg
    # the switches only apply to the configured list, not to one set over REST
    runtime = accepted_syntaxes(["1.2.840.10008.1.*"], settings.replace(JpegTransferSyntaxAccepted=False),
                                configured=False)
    assert "1.2.840.10008.1.2.4.50" in runtime


def test_several_modalities_with_one_aet(settings: Settings) -> None:
    from orthanc_lite.config import Modality

    mods = {"a": Modality("SHARED", "10.0.0.1", 104, AllowFind=True),
            "b": Modality("SHARED", "10.0.0.2", 104, AllowFind=False)}
    snap = policy.make_snapshot(settings.replace(**CLOSED), mods, ["1.2.840.10008.1.*"], False, "SHARED", "ORTHANC",
                                "10.0.0.2")
    assert snap.connection_allowed()
    assert not snap.request_allowed(policy.Request.FIND)  # not allowed for all of them, host not checked
    snap = policy.make_snapshot(settings.replace(**CLOSED, DicomCheckModalityHost=True), mods, ["1.2.840.10008.1.*"],
                                False, "SHARED", "ORTHANC", "10.0.0.1")
    assert snap.request_allowed(policy.Request.FIND)  # the entry matching the IP allows it


__all__ = ["io", "pydicom"]
