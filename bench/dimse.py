"""DICOM network benchmark (issue #4): C-STORE ingest over 1 and 4 associations, study-level C-FIND latency.

    python -m bench.dimse [--quick] [--patients N] [--runs N] [--no-orthanc] [--json OUT]

Called by the main harness (`python -m bench`) as `await run(...)`. By default it starts its own pair of servers
on fresh storage, because the comparison is only fair when *both* run with Nagle disabled: orthanc_lite sets
TCP_NODELAY itself, DCMTK (so real Orthanc) only when the environment says TCP_NODELAY=1 (without it Orthanc 1.10.1
drops to ~21 C-STORE/s here). Steps:
  1. the harness's synthetic store (bench/store.py, 200 patients = 20,000 instances; 20 with --quick) written to
     files once;
  2. timed ingest with dcmtk storescu (TCP_NODELAY=1): a subset over 1 association, another over 4 parallel
     associations (one storescu each), in rounds alternating the servers; then the rest of the store with 4;
  3. study-level C-FIND latency (p50/p95) on the full store with a pynetdicom SCU on one open association per
     server, alternating the servers query by query, checking both return the same number of answers.

`run(orthanc_lite_port, orthanc_port, files)` measures servers that are already running (C-STORE of `files`,
then the same C-FIND queries); the AET calling them (BENCHSCU) must be allowed to C-FIND there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import shutil
import socket
import statistics
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any, Final

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from tests.e2e.orthanc_peer import ServerProcess

CALLING_AET: Final = "BENCHSCU"
STORESCU: Final = shutil.which("storescu", path="/usr/bin:/usr/local/bin")
TARGETS: Final = {"ingest_1": 1.0, "ingest_4": 2.0, "cfind_p50": 0.5}  # lite/Orthanc (C-FIND: at most half)
STUDY_KEYS: Final = ("StudyInstanceUID", "PatientName", "PatientID", "StudyDate", "AccessionNumber",
                     "StudyDescription", "ModalitiesInStudy")
# name -> study-level constraints (values chosen against bench/store.py's names, IDs and dates)
QUERIES: Final[dict[str, dict[str, str]]] = {
    "study_by_patient_id": {"PatientID": "BENCH000007"},
    "study_name_wildcard": {"PatientName": "BR*"},
    "study_date_range": {"StudyDate": "20200101-20201231"},
    "study_all": {},
}
HEADLINE_QUERY: Final = "study_name_wildcard"
# what both servers under test are configured with: BENCHSCU may query them
KNOWN_SCU: Final[dict[str, Any]] = {"DicomModalities": {"bench": [CALLING_AET, "127.0.0.1", 104]}, "StableAge": 5}
# The Orthanc these benches start loads no plugin, so it does no DICOMweb work on a stable series. Ours would build
# the DICOMweb plugin 1.24's metadata cache of every series that turns stable (reading its 25 files) in the middle
# of the next measurement: off here, so that both servers do the same work.
LITE_AS_ORTHANC: Final[dict[str, Any]] = {**KNOWN_SCU, "DicomWeb": {"EnableMetadataCache": False}}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] dimse: {message}", flush=True)


# -- C-STORE ----------------------------------------------------------------------------------------


def _split(files: list[pathlib.Path], parts: int, folder: pathlib.Path) -> list[pathlib.Path]:
    """Hard-link the files into `parts` folders (storescu +sd), round robin."""
    dirs = []
    for k in range(parts):
        d = folder / f"part{k}"
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        dirs.append(d)
    for n, f in enumerate(files):
        target = dirs[n % parts] / f.name
        try:
            os.link(f, target)
        except OSError:
            shutil.copyfile(f, target)
    return dirs


async def storescu_ingest(port: int, aet: str, files: list[pathlib.Path], associations: int,
                          scratch: pathlib.Path, pid: int | None = None) -> dict[str, Any]:
    """Send `files` with `associations` parallel storescu processes; instances/s over the wall time."""
    assert STORESCU is not None, "dcmtk's storescu is not installed"
    dirs = _split(files, associations, scratch)
    cpu0 = _cpu_seconds(pid)
    started = time.perf_counter()
    procs = [await asyncio.create_subprocess_exec(
        STORESCU, "+sd", "-aet", CALLING_AET, "-aec", aet, "127.0.0.1", str(port), str(d),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "TCP_NODELAY": "1"}) for d in dirs]
    outputs = await asyncio.gather(*(p.communicate() for p in procs))
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds(pid) - cpu0 if pid else None
    failures = sum(1 for p in procs if p.returncode != 0)
    result: dict[str, Any] = {
        "instances": len(files), "associations": associations, "seconds": round(seconds, 3),
        "instances_per_s": round(len(files) / seconds, 1), "failed_clients": failures,
    }
    if cpu is not None:
        result["server_cpu_ms_per_instance"] = round(cpu * 1000 / len(files), 3)
    if failures:
        result["first_failure"] = next(out.decode(errors="replace")[-2000:] for p, (out, _) in zip(procs, outputs)
                                       if p.returncode != 0)
    return result


def _cpu_seconds(pid: int | None) -> float:
    """bench.servers.cpu_seconds, 0.0 without a pid or once the process is gone."""
    if not pid:
        return 0.0
    from bench.servers import cpu_seconds

    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


# -- C-FIND ----------------------------------------------------------------------------------------


class FindClient:
    """One open association per server; blocking (run through asyncio.to_thread)."""

    def __init__(self, port: int, aet: str) -> None:
        from pynetdicom import AE, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

        from orthanc_lite.dimse import reactor
        from orthanc_lite.dimse.handlers import set_nodelay

        reactor.install()  # the client's own polling must not blur the servers' latency
        from pynetdicom import _config

        _config.LOG_RESPONSE_IDENTIFIERS = _config.LOG_REQUEST_IDENTIFIERS = False
        self._model = StudyRootQueryRetrieveInformationModelFind
        ae = AE(ae_title=CALLING_AET)
        ae.add_requested_context(self._model)
        ae.dimse_timeout = ae.acse_timeout = ae.network_timeout = 120
        self.assoc = ae.associate("127.0.0.1", port, ae_title=aet, evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay)])
        if not self.assoc.is_established:
            raise RuntimeError(f"cannot associate with {aet} on port {port}")

    def find(self, constraints: dict[str, str]) -> tuple[float, int, int]:
        """(seconds, answers, final status) of one study-level C-FIND."""
        from pydicom.dataset import Dataset

        q = Dataset()
        q.QueryRetrieveLevel = "STUDY"
        for key in STUDY_KEYS:
            setattr(q, key, constraints.get(key, ""))
        started = time.perf_counter()
        answers = 0
        final = -1
        for rsp, _identifier in self.assoc.send_c_find(q, self._model):
            code = int(rsp.Status) if "Status" in rsp else -1
            if code in (0xFF00, 0xFF01):
                answers += 1
            else:
                final = code
        return time.perf_counter() - started, answers, final

    def close(self) -> None:
        if self.assoc.is_established:
            self.assoc.release()


def percentiles_ms(times_ms: list[float]) -> dict[str, float]:
    """{p50_ms, p95_ms} of C-FIND latencies in ms."""
    return {"p50_ms": round(statistics.median(times_ms), 2),
            "p95_ms": round(sorted(times_ms)[max(0, int(len(times_ms) * 0.95) - 1)], 2)}


async def cfind_latency(targets: dict[str, tuple[int, str]], runs: int) -> dict[str, dict[str, Any]]:
    """{query: {server: {p50_ms, p95_ms, answers}}}, alternating the servers query by query."""
    clients = {name: await asyncio.to_thread(FindClient, port, aet) for name, (port, aet) in targets.items()}
    out: dict[str, dict[str, Any]] = {}
    try:
        for query, constraints in QUERIES.items():
            times: dict[str, list[float]] = {name: [] for name in clients}
            counts: dict[str, set[int]] = {name: set() for name in clients}
            for name, client in clients.items():  # one warm-up each
                await asyncio.to_thread(client.find, constraints)
            for r in range(runs):
                order = list(clients) if r % 2 == 0 else list(reversed(clients))
                for name in order:
                    seconds, answers, final = await asyncio.to_thread(clients[name].find, constraints)
                    if final != 0:
                        raise RuntimeError(f"{name}: C-FIND {query} ended with status 0x{final:04X}")
                    times[name].append(seconds * 1000)
                    counts[name].add(answers)
            out[query] = {name: {**percentiles_ms(t), "answers": sorted(counts[name])} for name, t in times.items()}
            log(f"C-FIND {query}: " + ", ".join(f"{n} p50 {v['p50_ms']} ms ({v['answers']} answers)"
                                                 for n, v in out[query].items()))
    finally:
        for client in clients.values():
            await asyncio.to_thread(client.close)
    return out


# -- servers ---------------------------------------------------------------------------------------


def orthanc_process(folder: pathlib.Path) -> ServerProcess:
    """Real Orthanc on fresh storage in `folder`, knowing BENCHSCU, with TCP_NODELAY=1: a ServerProcess, not
    started yet (the caller starts and stops it)."""
    from tests.e2e.orthanc_peer import ORTHANC_BIN, ServerProcess, _base_config

    cfg = _base_config(folder, "RealOrthanc")
    cfg.update(KNOWN_SCU, Plugins=[])
    return ServerProcess("orthanc", folder, cfg, [ORTHANC_BIN, str(folder / "config.json")],
                         extra_env={"TCP_NODELAY": "1"})


def _start_pair(workdir: pathlib.Path, with_orthanc: bool) -> dict[str, Any]:
    """Fresh orthanc_lite and (when available) real Orthanc, both knowing BENCHSCU, Orthanc with TCP_NODELAY=1."""
    from tests.e2e.orthanc_peer import ORTHANC_AVAILABLE, spawn_orthanc_lite

    servers: dict[str, Any] = {"orthanc_lite": spawn_orthanc_lite(workdir / "lite", LITE_AS_ORTHANC, timeout=60)}
    if with_orthanc and ORTHANC_AVAILABLE:
        servers["orthanc"] = orthanc_process(workdir / "orthanc").start(60)
    return servers


def write_store(patients: int, folder: pathlib.Path) -> list[pathlib.Path]:
    """bench/store.py's synthetic store as files (cached there as one pack; written here once)."""
    from bench.store import StoreShape, load

    items = load(StoreShape(patients=patients))
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"{n:06d}.dcm" for n in range(len(items))]
    for f, data in zip(files, items):
        if not f.exists() or f.stat().st_size != len(data):
            f.write_bytes(data)
    return files


async def _ingest_rounds(targets: dict[str, tuple[int, str, int | None]], files: list[pathlib.Path], subset: int,
                         rounds: int, scratch: pathlib.Path) -> tuple[dict[str, dict[str, Any]], int]:
    chunk = max(1, subset // rounds)
    parts: dict[str, dict[int, list[dict[str, Any]]]] = {name: {1: [], 4: []} for name in targets}
    pos = 0
    for r in range(rounds):
        for associations in (1, 4):
            part = files[pos:pos + chunk]
            pos += chunk
            names = list(targets) if r % 2 == 0 else list(reversed(targets))
            for name in names:
                port, aet, pid = targets[name]
                result = await storescu_ingest(port, aet, part, associations, scratch / name, pid)
                if result["failed_clients"]:
                    raise RuntimeError(f"{name}: storescu failed: {result.get('first_failure')}")
                parts[name][associations].append(result)
                log(f"round {r + 1}/{rounds}, {associations} association(s), {name}: "
                    f"{result['instances_per_s']} inst/s")
    out: dict[str, dict[str, Any]] = {}
    for name in targets:
        for associations in (1, 4):
            ps = parts[name][associations]
            n = sum(p["instances"] for p in ps)
            s = sum(p["seconds"] for p in ps)
            pooled: dict[str, Any] = {"instances": n, "associations": associations, "seconds": round(s, 3),
                                      "instances_per_s": round(n / s, 1),
                                      "rounds_per_s": [p["instances_per_s"] for p in ps]}
            cpu = [p["server_cpu_ms_per_instance"] for p in ps if "server_cpu_ms_per_instance" in p]
            if cpu:
                pooled["server_cpu_ms_per_instance"] = round(statistics.mean(cpu), 3)
            out.setdefault(f"ingest_{associations}", {})[name] = pooled
    return out, pos


def _figures(ingest: dict[str, dict[str, Any]], finds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The harness's table format: {figure: {"lite": {...}, "orthanc": {...} | None}}, plus the targets."""
    result: dict[str, Any] = {}
    labels = {"ingest_1": "cstore_1_association", "ingest_4": "cstore_4_associations"}
    for key, label in labels.items():
        if key in ingest:
            result[label] = {"lite": ingest[key].get("orthanc_lite"), "orthanc": ingest[key].get("orthanc")}
    for query, per_server in finds.items():
        result[f"cfind_{query}"] = {"lite": per_server.get("orthanc_lite"), "orthanc": per_server.get("orthanc")}
    verdicts: dict[str, Any] = {}
    for key, label in labels.items():
        entry = result.get(label)
        if entry and entry["lite"] and entry["orthanc"]:
            ratio = entry["lite"]["instances_per_s"] / entry["orthanc"]["instances_per_s"]
            verdicts[label] = {"ratio": round(ratio, 2), "target": f">= {TARGETS[key]}x",
                               "met": ratio >= TARGETS[key]}
    head = result.get(f"cfind_{HEADLINE_QUERY}")
    if head and head["lite"] and head["orthanc"]:
        ratio = head["lite"]["p50_ms"] / head["orthanc"]["p50_ms"]
        verdicts[f"cfind_{HEADLINE_QUERY}"] = {"ratio": round(ratio, 2), "target": "<= 0.5x (p50)",
                                               "met": ratio <= TARGETS["cfind_p50"]}
    result["targets"] = verdicts
    return result


async def run(orthanc_lite_port: int | None = None, orthanc_port: int | None = None,
              files: list[str | os.PathLike[str]] | None = None, *, aet_lite: str = "ORTHANC", aet_orthanc: str = "ORTHANC",
              runs: int = 20, quick: bool = False, workdir: str | None = None, store_patients: int | None = None,
              with_orthanc: bool = True) -> dict[str, Any]:
    """The section. Without `files`: a fresh server pair and the synthetic store (see the module docstring).
    With `files` and ports: C-STORE of `files` into the running servers (1 then 4 associations, half each),
    then the C-FIND queries."""
    base = pathlib.Path(workdir or tempfile.mkdtemp(prefix="bench-dimse-")) / "dimse"
    base.mkdir(parents=True, exist_ok=True)
    scratch = base / "scratch"
    if files is not None:
        assert orthanc_lite_port is not None
        paths = [pathlib.Path(f) for f in files]
        targets: dict[str, tuple[int, str, int | None]] = {"orthanc_lite": (orthanc_lite_port, aet_lite, None)}
        if orthanc_port:
            targets["orthanc"] = (orthanc_port, aet_orthanc or "ORTHANC", None)
        ingest, _ = await _ingest_rounds(targets, paths, len(paths) // 2, 1, scratch)
        finds = await cfind_latency({n: (p, a) for n, (p, a, _) in targets.items()}, runs)
        return _figures(ingest, finds)

    patients = store_patients or (20 if quick else 200)
    log(f"writing the store of {patients} patients to files")
    paths = await asyncio.to_thread(write_store, patients, base / "store")
    subset = min(200 if quick else 2000, len(paths) // 4)
    servers = await asyncio.to_thread(_start_pair, base / "servers", with_orthanc)
    try:
        targets = {name: (proc.dicom_port, proc.aet, proc.pid) for name, proc in servers.items()}
        ingest, done = await _ingest_rounds(targets, paths, subset, 2, scratch)
        for name, (port, aet, pid) in targets.items():
            rest = paths[done:]
            if rest:
                log(f"{name}: the remaining {len(rest)} instances with 4 associations")
                bulk = await storescu_ingest(port, aet, rest, 4, scratch / name, pid)
                if bulk["failed_clients"]:
                    raise RuntimeError(f"{name}: storescu failed: {bulk.get('first_failure')}")
                ingest.setdefault("ingest_bulk_4", {})[name] = bulk
        finds = await cfind_latency({n: (p, a) for n, (p, a, _) in targets.items()}, runs)
    finally:
        for proc in servers.values():
            await asyncio.to_thread(proc.stop)
        shutil.rmtree(base / "servers", ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    result = _figures(ingest, finds)
    result["details"] = {"store_instances": len(paths), "timed_subset": subset, "runs": runs,
                         "cstore_bulk_4": ingest.get("ingest_bulk_4"), "cpus": os.cpu_count(),
                         "client": "dcmtk storescu (TCP_NODELAY=1); pynetdicom C-FIND SCU",
                         "orthanc_env": "TCP_NODELAY=1"}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dimse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 instances, 5 runs per latency")
    parser.add_argument("--patients", type=int, help="patients in the store (x100 instances; default 200)")
    parser.add_argument("--runs", type=int, help="runs per C-FIND latency (default 20, 5 with --quick)")
    parser.add_argument("--no-orthanc", action="store_true", help="measure orthanc_lite only")
    parser.add_argument("--workdir", help="scratch folder (default: a temporary one)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    runs = args.runs or (5 if args.quick else 20)
    result = asyncio.run(run(runs=runs, quick=args.quick, workdir=args.workdir, store_patients=args.patients,
                             with_orthanc=not args.no_orthanc))
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.json:
        pathlib.Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["cfind_latency", "run", "socket", "storescu_ingest"]
