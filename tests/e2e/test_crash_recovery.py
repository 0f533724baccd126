"""SIGKILL during a sustained upload from 4 clients, restart: nothing answered 200 is lost, index and storage agree.

The server runs as a real subprocess (`python -m orthanc_lite`). Each round, 4 aiohttp clients upload generated
instances continuously; once the round's quota of successes is reached the server is SIGKILLed while requests are
in flight, then restarted on the same storage. After every restart:
- every instance answered 200 is listed, and its stored file has exactly the bytes that were sent;
- the attachment UUIDs of the index (GET /instances?expand, FileUuid) equal the files under StorageDirectory at
  <uuid[0:2]>/<uuid[2:4]>/<uuid> - no rows without files, no files without rows - and no temporary file is left;
- the start-up check never had to drop an index row (that would mean a committed row pointed at a missing file).
"""

from __future__ import annotations

import asyncio
import io
import hashlib
import os
import pathlib
import re

import aiohttp
import pytest

from tests.data.make_samples import make_instance
from tests.e2e.orthanc_peer import ServerProcess, spawn_orthanc_lite

CLIENTS = 4
ROUNDS = 3
KILL_AFTER = (120, 60, 200)        # successes per round before the SIGKILL (varied, to hit different moments)
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
INDEX_FILES = {"index", "index-wal", "index-shm", "index-journal"}


def _instances(round_no: int, client: int, count: int) -> list[bytes]:
    # Several instances per series and several series per patient, so that parents are both created and reused.
    out = []
    for i in range(count):
        patient = f"CRASH-{round_no}-{client}-{i // 20}"
        out.append(make_instance(patient, study_uid=f"1.2.826.0.1.3680043.99.{round_no}.{client}.{i // 20}",
                                 series_uid=f"1.2.826.0.1.3680043.99.{round_no}.{client}.{i // 20}.{i // 5}",
                                 instance_number=i % 5 + 1))
    return out


async def _load_until_killed(proc: ServerProcess, round_no: int, kill_after: int,
                             answered: dict[str, str]) -> tuple[int, int]:
    """4 clients upload until `kill_after` successes, then SIGKILL with requests in flight. Returns (ok, failed)."""
    pools = [_instances(round_no, c, kill_after) for c in range(CLIENTS)]
    successes = 0
    failures = 0
    killed = asyncio.Event()

    async def client(data: list[bytes]) -> None:
        nonlocal successes, failures
        async with aiohttp.ClientSession(base_url=proc.url, timeout=aiohttp.ClientTimeout(total=20)) as http:
            for body in data:
                if killed.is_set():
                    return
                try:
                    async with http.post("/instances", data=body) as resp:
                        payload = await resp.json() if resp.status == 200 else None
                except (TimeoutError, aiohttp.ClientError):
                    failures += 1   # in flight when the server died: may or may not be stored, both are fine
                    return
                assert payload is not None, f"upload answered {resp.status}"
                assert payload["Status"] == "Success"
                answered[payload["ID"]] = hashlib.md5(body).hexdigest()
                successes += 1
                if successes >= kill_after and not killed.is_set():
                    killed.set()
                    proc.kill()   # SIGKILL: no clean-up runs in the server

    await asyncio.gather(*(client(pool) for pool in pools))
    assert killed.is_set(), "the clients ran out of instances before the kill"
    return successes, failures


def _files_under(storage: pathlib.Path) -> tuple[set[str], list[str]]:
    """(attachment UUIDs at <uuid[0:2]>/<uuid[2:4]>/<uuid>, every other file except the index and the spool)."""
    attachments: set[str] = set()
    strays: list[str] = []
    for dirpath, _dirs, files in os.walk(storage):
        rel = pathlib.Path(dirpath).relative_to(storage)
        for name in files:
            parts = rel.parts
            if len(parts) == 2 and UUID_RE.match(name) and parts == (name[0:2], name[2:4]):
                attachments.add(name)
            elif rel == pathlib.Path(".") and name in INDEX_FILES:
                continue
            else:
                strays.append(str(rel / name))
    return attachments, strays


async def _check_consistency(proc: ServerProcess, answered: dict[str, str]) -> tuple[int, list[str]]:
    async with aiohttp.ClientSession(base_url=proc.url) as http:
        async with http.get("/instances?expand") as resp:
            assert resp.status == 200
            instances = await resp.json()
        async with http.get("/statistics") as resp:
            stats = await resp.json()
    by_id = {i["ID"]: i for i in instances}
    missing = sorted(set(answered) - set(by_id))
    assert not missing, f"{len(missing)} instances answered 200 are gone after the crash, e.g. {missing[:3]}"
    assert stats["CountInstances"] == len(by_id)

    index_uuids = {i["FileUuid"] for i in instances}
    assert len(index_uuids) == len(instances), "two instances share an attachment"
    on_disk, strays = _files_under(proc.storage_dir)
    assert not (index_uuids - on_disk), f"index rows without files: {sorted(index_uuids - on_disk)[:5]}"
    assert not (on_disk - index_uuids), f"files without index rows: {sorted(on_disk - index_uuids)[:5]}"

    # The stored bytes are exactly the uploaded bytes (no torn file under a real name), read back through the API
    # (which also decompresses when StorageCompression is on).
    async with aiohttp.ClientSession(base_url=proc.url) as http:
        for public_id, md5 in answered.items():
            async with http.get(f"/instances/{public_id}/file") as resp:
                assert resp.status == 200
                data = await resp.read()
            assert hashlib.md5(data).hexdigest() == md5, f"file of {public_id} differs from the upload"
            assert by_id[public_id]["FileSize"] == len(data)
    return len(by_id), strays


@pytest.mark.timeout(90)   # about 10 s per variant on 2 cores; no wall-clock assert (shared CI machines)
@pytest.mark.parametrize("compression", [False, True], ids=["plain", "compressed"])
def test_sigkill_during_sustained_upload_loses_nothing(tmp_path: pathlib.Path, compression: bool) -> None:
    answered: dict[str, str] = {}
    strays: set[str] = set()
    proc = spawn_orthanc_lite(tmp_path, {"SyncStorageArea": True, "StorageCompression": compression})
    try:
        for round_no in range(ROUNDS):
            ok, _failed = asyncio.run(_load_until_killed(proc, round_no, KILL_AFTER[round_no], answered))
            assert ok >= KILL_AFTER[round_no]
            proc.start()   # same storage and index; the start-up check repairs what the crash left
            stored, round_strays = asyncio.run(_check_consistency(proc, answered))
            strays.update(round_strays)
            # Everything answered is there; at most the one request in flight per client may have been stored too.
            assert len(answered) <= stored <= len(answered) + CLIENTS
        log = proc.log_path.read_text(errors="replace")
        # A committed row must never point at a missing file (files are fsynced and renamed before the commit).
        assert "lost their file" not in log, log[-3000:]
    finally:
        proc.stop()
    # Temporary files of interrupted writes (<uuid>.tmp, next to the attachments) must not accumulate either.
    assert not strays, f"files left in the storage that are neither attachments nor the index: {sorted(strays)[:5]}"


# -- the same over DICOM: C-STORE from 4 associations at once ------------------------------------------------------


def _store_until_killed(proc: ServerProcess, round_no: int, kill_after: int, answered: dict[str, str]) -> int:
    """4 pynetdicom SCUs (one association each, in threads) C-STORE until `kill_after` successes, then SIGKILL.
    `answered` gets public ID -> MD5 of the file the server must hold (pynetdicom's File Meta + the data set as
    sent). Returns the successes."""
    import threading

    from pydicom import dcmread
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE
    from pynetdicom.dsutils import encode
    from pynetdicom.sop_class import CTImageStorage

    from orthanc_lite import ids
    from orthanc_lite.dimse.fastpath import file_meta_prefix

    lock = threading.Lock()
    killed = threading.Event()
    successes = 0

    def client(c: int) -> None:
        nonlocal successes
        ae = AE(ae_title=f"CRASH{c}")
        ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
        assoc = ae.associate("127.0.0.1", proc.dicom_port, ae_title=proc.aet)
        assert assoc.is_established
        try:
            for body in _instances(100 + round_no, c, kill_after):
                if killed.is_set():
                    return
                ds = dcmread(io.BytesIO(body))
                try:
                    rsp = assoc.send_c_store(ds)
                except Exception:  # noqa: BLE001 - the server died under us: in flight, either outcome is fine
                    return
                if "Status" not in rsp:
                    return  # no answer: the association died with the server
                assert int(rsp.Status) == 0x0000, f"C-STORE answered 0x{int(rsp.Status):04X}"
                stored = file_meta_prefix(str(ds.SOPClassUID), str(ds.SOPInstanceUID), ExplicitVRLittleEndian)
                stored += encode(ds, False, True)
                public_id = ids.instance_id(str(ds.PatientID), str(ds.StudyInstanceUID),
                                            str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
                with lock:
                    answered[public_id] = hashlib.md5(stored).hexdigest()
                    successes += 1
                    if successes >= kill_after and not killed.is_set():
                        killed.set()
                        proc.kill()
        finally:
            if assoc.is_established:
                assoc.abort()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert killed.is_set(), "the associations ran out of instances before the kill"
    return successes


@pytest.mark.timeout(90)
def test_sigkill_during_cstore_over_four_associations_loses_nothing(tmp_path: pathlib.Path) -> None:
    """As above, over DICOM: every instance answered 0x0000 survives the SIGKILL, byte for byte."""
    answered: dict[str, str] = {}
    strays: set[str] = set()
    proc = spawn_orthanc_lite(tmp_path, {"SyncStorageArea": True})
    try:
        for round_no in range(ROUNDS):
            ok = _store_until_killed(proc, round_no, KILL_AFTER[round_no], answered)
            assert ok >= KILL_AFTER[round_no]
            proc.start()
            stored, round_strays = asyncio.run(_check_consistency(proc, answered))
            strays.update(round_strays)
            assert len(answered) <= stored <= len(answered) + CLIENTS
        log = proc.log_path.read_text(errors="replace")
        assert "lost their file" not in log, log[-3000:]
    finally:
        proc.stop()
    assert not strays, f"files left in the storage that are neither attachments nor the index: {sorted(strays)[:5]}"
