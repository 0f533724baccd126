"""Per-stage timings of one C-STORE inside orthanc_lite: where does an instance's time and CPU go?

    python -m bench.stages [--instances 1000] [--associations 1] [--rest]

Runs orthanc_lite in this process (`orthanc_lite.serve`), wraps the functions of each stage of the ingest line with
timers (wall time, and the calling thread's CPU time, which outside load disturbs less), sends the bench store with
dcmtk storescu (TCP_NODELAY=1) over the given number of associations (or, with --rest, POSTs it with aiohttp) and
prints, per stage, the mean and p50 wall time and the mean CPU time per instance, plus the server's total CPU per
instance. The wrappers themselves cost a few microseconds per call. Stages of a C-STORE, in order:
  pdu_receive   DUL thread: P-DATA primitives decoded into a C-STORE-RQ (the dataset kept in memory, or spilled)
  serve         the association thread serves the request (pynetdicom's SCP), which contains:
  handler       our EVT_C_STORE handler, which contains:
    parse         dicom/parse.py::parse_instance (including the wait for the cpu turn)
    file          the storage write (rename into place)
    fsync         the file's fsync, in the same thread, before the index
    index         the group commit, which contains:
      commit_lock   waiting for the leader (or to lead)
      batch         one BEGIN IMMEDIATE ... COMMIT, which contains:
        statements    index/writes.py::store_instance
  response      the C-STORE-RSP encoded and queued for the DUL thread
On the lean path (dimse/lean.py) `pdu_receive`, `serve` and `response` are replaced by:
  lean_pdu      DUL thread: one PDU read and served, which for the last PDU of an instance contains:
  lean_serve    the store (`handler` and the stages within) and the C-STORE-RSP written to the socket
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import pathlib
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from typing import Any, Callable

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_samples: dict[str, list[tuple[float, float]]] = defaultdict(list)  # stage -> [(wall s, cpu s)]
_lock = threading.Lock()


def _timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            sample = (time.perf_counter() - wall, time.thread_time() - cpu)
            with _lock:
                _samples[stage].append(sample)
    return wrapper


def _patch(owner: Any, name: str, stage: str) -> None:
    setattr(owner, name, _timed(stage, getattr(owner, name)))


def install() -> None:
    """Wrap the stage functions (before the server starts, so bound methods pick the wrappers up)."""
    from pynetdicom.association import Association
    from pynetdicom.dimse import DIMSEServiceProvider

    from orthanc_lite.dimse import fastpath, handlers, lean
    from orthanc_lite.index import engine, sqlite, writes
    from orthanc_lite.services import store
    from orthanc_lite.storage import filesystem

    fastpath.install()  # first, so that the wrappers below wrap its functions (the server installs it again: no-op)
    _patch(DIMSEServiceProvider, "receive_primitive", "pdu_receive")
    _patch(DIMSEServiceProvider, "send_msg", "response")
    _patch(handlers.Handlers, "on_store", "handler")
    _patch(handlers.Handlers, "_take_dataset_file", "take_file")
    _patch(store, "parse_instance", "parse")
    _patch(filesystem.FilesystemStorage, "adopt_file", "file")
    _patch(filesystem.FilesystemStorage, "write_bytes", "file")
    _patch(filesystem, "_fsync_fd", "fsync")
    _patch(sqlite.SqliteIndex, "store_sync", "index")
    _patch(engine, "_write_batch", "batch")
    _patch(writes, "store_instance", "statements")
    _patch(store, "announce", "announce")
    _patch(Association, "_serve_request", "serve")
    # the lean path (dimse/lean.py): one PDU read in the DUL thread, and an instance stored and answered there
    _patch(lean.LeanReceiver, "read_pdu", "lean_pdu")
    _patch(lean.LeanReceiver, "_complete", "lean_serve")
    _patch(handlers.Handlers, "store_lean", "handler")


def report(instances: int, server_cpu_s: float, seconds: float) -> str:
    lines = [f"{instances} instances in {seconds:.2f} s = {instances / seconds:.0f}/s; "
             f"server CPU {1000 * server_cpu_s / instances:.2f} ms per instance",
             f"{'stage':<14}{'calls':>7}{'mean ms':>9}{'p50 ms':>8}{'p95 ms':>8}{'cpu ms':>8}  (cpu per instance)"]
    for stage, samples in sorted(_samples.items(), key=lambda kv: -sum(s[0] for s in kv[1])):
        walls = sorted(s[0] for s in samples)
        cpu = sum(s[1] for s in samples)
        lines.append(f"{stage:<14}{len(samples):>7}{1000 * statistics.mean(walls):>9.3f}"
                     f"{1000 * walls[len(walls) // 2]:>8.3f}{1000 * walls[int(len(walls) * 0.95)]:>8.3f}"
                     f"{1000 * cpu / instances:>8.3f}")
    return "\n".join(lines)


async def run(instances: int, associations: int, rest: bool, clients: int) -> str:
    import orthanc_lite
    from bench.dimse import STORESCU, write_store
    from bench.ingest import ingest
    from bench.store import StoreShape, load
    from orthanc_lite.config import load as load_settings

    install()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-stages-"))
    settings = load_settings(None).replace(StorageDirectory=str(work / "storage"), HttpPort=0, DicomPort=0,
                                           RemoteAccessAllowed=True, AuthenticationEnabled=False, DicomAlwaysAllowStore=True,
                                           DicomCheckCalledAet=False)
    async with orthanc_lite.serve(settings, host="127.0.0.1") as server:
        import gc

        gc.freeze()
        cpu0 = time.process_time()
        started = time.perf_counter()
        if rest:
            items = load(StoreShape(patients=max(1, (instances + 99) // 100)))[:instances]

            class _Target:
                url = server.url

                @staticmethod
                def cpu_seconds() -> float:
                    return 0.0

            result = await ingest(_Target(), items, clients)  # type: ignore[arg-type]
            if result["failures"]:
                raise RuntimeError(result["first_failure"])
        else:
            assert STORESCU is not None, "dcmtk's storescu is not installed"
            files = await asyncio.to_thread(write_store, max(1, (instances + 99) // 100), work / "store")
            files = files[:instances]
            from bench.dimse import _split

            dirs = _split(files, associations, work / "parts")
            procs = [await asyncio.create_subprocess_exec(
                STORESCU, "+sd", "-aec", "ORTHANC", "127.0.0.1", str(server.dicom_port), str(d),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                env={**os.environ, "TCP_NODELAY": "1"}) for d in dirs]
            codes = await asyncio.gather(*(p.wait() for p in procs))
            if any(codes):
                raise RuntimeError(f"storescu failed: {codes}")
        seconds = time.perf_counter() - started
        server_cpu = time.process_time() - cpu0  # includes this process's client side with --rest
    return report(instances, server_cpu, seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--associations", type=int, default=1)
    parser.add_argument("--rest", action="store_true", help="POST /instances instead of C-STORE")
    parser.add_argument("--clients", type=int, default=1, help="REST clients (with --rest)")
    args = parser.parse_args(argv)
    print(asyncio.run(run(args.instances, args.associations, args.rest, args.clients)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
