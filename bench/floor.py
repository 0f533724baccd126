"""The floor of the mandated libraries: what pynetdicom, aiohttp and pydicom cost on this machine with no orthanc_lite
work at all, next to real Orthanc measured in the same run.

    python -m bench.floor [--quick] [--runs N] [--no-orthanc] [--json OUT]

A speed target (bench/report.py, bench/dimse.py TARGETS) that the bare libraries already miss cannot be met by any
amount of work in orthanc_lite, so each figure prints floor/Orthanc next to the target. Each bare server runs in its
own process (`python -m bench.floor --serve KIND`, which exits when its stdin closes) so that the client does not
share its GIL:
  1. C-STORE: a pynetdicom AE (AllStoragePresentationContexts, maximum PDU 0, orthanc_lite's reactor patch,
     TCP_NODELAY on accepted sockets) whose EVT_C_STORE handler returns 0x0000; dcmtk storescu +sd (TCP_NODELAY=1)
     over 1 and over 4 associations, on bench/store.py's store as files (2,000 instances, 400 with --quick);
  2. C-FIND (study root): the handler yields N prebuilt study-level answers, N read from the query's PatientID
     (2, 20, 400: the answer counts of bench/dimse.py's study_by_patient_id, study_name_wildcard and study_all on
     its 200-patient store); client bench.dimse.FindClient, one association, p50 over --runs;
  3. REST: an aiohttp app whose POST /instances reads the body and answers a small orjson document, driven by
     bench.ingest.ingest with 1 and 4 clients;
  4. pydicom: mean ms per instance of orthanc_lite's parse_instance and of plain dcmread, in this process.
Real Orthanc (when /usr/sbin/Orthanc exists, with TCP_NODELAY=1) gets the same storescu commands and uploads, on
fresh storage for each measurement (a duplicate is cheaper than a store); for C-FIND, the instance of Orthanc that
took the 4-association C-STORE also gets one instance of every series of the 200-patient store, so that it answers
the real bench queries with the same counts (2, 20, 400).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import pathlib
import platform
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any, Final, cast

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.dimse import QUERIES, TARGETS, FindClient, _cpu_seconds, orthanc_process, percentiles_ms, storescu_ingest
from bench import report
from bench.report import INGEST_1_TARGET, INGEST_4_TARGET, Row, _fmt
from bench.servers import ORTHANC, ORTHANC_AVAILABLE, Server

FLOOR_AET: Final = "FLOOR"
KINDS: Final = ("cstore", "cfind", "http")
# bench/dimse.py query -> its number of study-level answers on the 200-patient store
FIND_ANSWERS: Final = {"study_by_patient_id": 2, "study_name_wildcard": 20, "study_all": 400}
FIND_PATIENTS: Final = 200
START_TIMEOUT: Final = 60.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] floor: {message}", flush=True)


# -- the bare servers (child processes) -------------------------------------------------------------


def _quiet_pynetdicom() -> None:
    """orthanc_lite's reactor patch and no per-message logging: pynetdicom as cheap as it gets."""
    from pynetdicom import _config

    from orthanc_lite.dimse import reactor

    reactor.install()
    _config.LOG_HANDLER_LEVEL = "none"
    _config.LOG_REQUEST_IDENTIFIERS = _config.LOG_RESPONSE_IDENTIFIERS = False


def _study_answers() -> list[Any]:
    """Study-level answers shaped like Orthanc's (bench/dimse.py STUDY_KEYS, charset, retrieve AET) for the studies
    of bench/store.py's 200-patient store, read from the first instance of each of their series."""
    from io import BytesIO

    from pydicom import dcmread
    from pydicom.dataset import Dataset

    from bench.dimse import STUDY_KEYS
    from bench.store import StoreShape, make_instance

    shape = StoreShape(patients=FIND_PATIENTS)
    answers = []
    for p in range(shape.patients):
        for st in range(shape.studies):
            series = [dcmread(BytesIO(make_instance(shape, p, st, se, 0)), stop_before_pixels=True)
                      for se in range(shape.series)]
            ds = Dataset()
            ds.SpecificCharacterSet = "ISO_IR 100"
            ds.QueryRetrieveLevel = "STUDY"
            ds.RetrieveAETitle = FLOOR_AET
            for key in STUDY_KEYS:
                if key == "ModalitiesInStudy":
                    ds.ModalitiesInStudy = sorted({s.Modality for s in series})
                else:
                    setattr(ds, key, series[0].get(key, ""))
            answers.append(ds)
    return answers


def _start_scp(kind: str) -> int:
    """A bare pynetdicom SCP on a free loopback port (returned); it runs in pynetdicom's threads."""
    from pynetdicom import AE, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    from orthanc_lite.dimse.handlers import set_nodelay

    _quiet_pynetdicom()
    ae = AE(ae_title=FLOOR_AET)
    ae.maximum_pdu_size = 0
    handlers: list[Any] = [(evt.EVT_CONN_OPEN, set_nodelay)]
    if kind == "cstore":
        ae.supported_contexts = AllStoragePresentationContexts
        handlers.append((evt.EVT_C_STORE, lambda event: 0x0000))
    else:
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        answers = _study_answers()

        def on_find(event: Any) -> Iterator[tuple[int, Any]]:
            n = int(str(event.identifier.get("PatientID", "") or 0))
            for i in range(n):
                yield 0xFF00, answers[i % len(answers)]

        handlers.append((evt.EVT_C_FIND, on_find))
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
    assert server is not None
    return int(server.server_address[1])


async def _serve_http() -> None:
    """A bare aiohttp app: POST /instances reads the body and answers a small JSON document, like Orthanc's."""
    import orjson
    from aiohttp import web

    async def post_instance(request: web.Request) -> web.Response:
        body = await request.read()
        answer = {"ID": "0" * 44, "ParentPatient": "1" * 44, "ParentStudy": "2" * 44, "ParentSeries": "3" * 44,
                  "Path": "/instances/" + "0" * 44, "Status": "Success", "Size": len(body)}
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/instances", post_instance)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr,attr-defined]
    print(f"PORT {sockets[0].getsockname()[1]}", flush=True)
    try:
        await asyncio.to_thread(sys.stdin.read)
    finally:
        await runner.cleanup()


def serve(kind: str) -> None:
    """Child process: print `PORT n`, serve until stdin closes (the parent stopped us or died)."""
    if kind == "http":
        asyncio.run(_serve_http())
        return
    port = _start_scp(kind)
    print(f"PORT {port}", flush=True)
    sys.stdin.read()
    os._exit(0)  # pynetdicom's association threads need no clean exit


class BareServer:
    """Parent side of a bare server: its pid, port and CPU time (duck-types bench.servers.Server for ingest)."""

    def __init__(self, kind: str, folder: pathlib.Path) -> None:
        self.kind = kind
        folder.mkdir(parents=True, exist_ok=True)
        self.log_path = folder / f"{kind}.log"
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen([sys.executable, "-m", "bench.floor", "--serve", kind], cwd=str(ROOT),
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file)
        try:
            self.port = self._read_port()
        except BaseException:
            self.stop()
            raise

    def _read_port(self) -> int:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
        line = self.proc.stdout.readline() if ready else b""
        if not line.startswith(b"PORT "):
            raise RuntimeError(f"bare {self.kind} server did not start:\n{self.log_path.read_text(errors='replace')}")
        return int(line.split()[1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        return _cpu_seconds(self.pid)

    def stop(self) -> None:
        """Close stdin (the child exits), then SIGKILL if it lingers."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextlib.contextmanager
def bare(kind: str, folder: pathlib.Path) -> Iterator[BareServer]:
    server = BareServer(kind, folder)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def orthanc(folder: pathlib.Path) -> Iterator[Server]:
    """Real Orthanc on fresh storage, knowing BENCHSCU, with TCP_NODELAY=1 (as bench/dimse.py starts it)."""
    proc = orthanc_process(folder)
    try:
        yield Server(ORTHANC, proc.start(START_TIMEOUT))
    finally:
        proc.stop()
        shutil.rmtree(folder, ignore_errors=True)


# -- measurements ----------------------------------------------------------------------------------


def measure_parse(items: Sequence[bytes]) -> dict[str, Any]:
    """Mean ms per instance: orthanc_lite's parse_instance, then plain dcmread (after a short warm-up each)."""
    from io import BytesIO

    from pydicom import dcmread

    from orthanc_lite.dicom.parse import parse_instance

    def mean_ms(fn: Any) -> float:
        for data in items[:20]:
            fn(data)
        started = time.perf_counter()
        for data in items:
            fn(data)
        return round((time.perf_counter() - started) * 1000 / len(items), 4)

    return {"instances": len(items), "mean_file_bytes": round(sum(map(len, items)) / len(items)),
            "parse_instance_ms": mean_ms(lambda b: parse_instance(b, "Latin1")),
            "dcmread_ms": mean_ms(lambda b: dcmread(BytesIO(b), stop_before_pixels=True))}


async def _stored(port: int, aet: str, files: list[pathlib.Path], associations: int, scratch: pathlib.Path,
                  pid: int, who: str) -> dict[str, Any]:
    result = await storescu_ingest(port, aet, files, associations, scratch, pid)
    if result["failed_clients"]:
        raise RuntimeError(f"{who}: storescu failed: {result.get('first_failure')}")
    log(f"C-STORE, {associations} association(s), {who}: {result['instances_per_s']} inst/s, "
        f"server CPU {result.get('server_cpu_ms_per_instance')} ms/instance")
    return result


def _series_heads(first_patient: int, folder: pathlib.Path) -> list[pathlib.Path]:
    """The first instance of every series of the 200-patient store's patients from `first_patient` on, as files."""
    from bench.store import StoreShape, make_instance

    shape = StoreShape(patients=FIND_PATIENTS)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for p in range(first_patient, shape.patients):
        for st in range(shape.studies):
            for se in range(shape.series):
                f = folder / f"{p:04d}-{st}-{se}.dcm"
                f.write_bytes(make_instance(shape, p, st, se, 0))
                files.append(f)
    return files


async def measure_cfind(targets: dict[str, tuple[int, str, int]], runs: int) -> dict[str, dict[str, Any]]:
    """{query: {"floor"|"orthanc": {answers, p50_ms, p95_ms, server_cpu_ms_per_query}}}, alternating the servers
    run by run. The floor gets PatientID=N; Orthanc gets bench/dimse.py's real constraints."""
    clients = {name: await asyncio.to_thread(FindClient, port, aet) for name, (port, aet, _) in targets.items()}
    out: dict[str, dict[str, Any]] = {}
    try:
        for query, n in FIND_ANSWERS.items():
            constraints = {"floor": {"PatientID": str(n)}, "orthanc": QUERIES[query]}
            times: dict[str, list[float]] = {name: [] for name in clients}
            counts: dict[str, set[int]] = {name: set() for name in clients}
            for name, client in clients.items():  # warm-up
                await asyncio.to_thread(client.find, constraints[name])
            cpu0 = {name: _cpu_seconds(pid) for name, (_, _, pid) in targets.items()}
            for r in range(runs):
                for name in (list(clients) if r % 2 == 0 else list(reversed(clients))):
                    seconds, answers, final = await asyncio.to_thread(clients[name].find, constraints[name])
                    if final != 0:
                        raise RuntimeError(f"{name}: C-FIND {query} ended with status 0x{final:04X}")
                    times[name].append(seconds * 1000)
                    counts[name].add(answers)
            out[query] = {}
            for name, t in times.items():
                cpu = _cpu_seconds(targets[name][2]) - cpu0[name]
                out[query][name] = {"answers": sorted(counts[name]), **percentiles_ms(t),
                                    "server_cpu_ms_per_query": round(cpu * 1000 / runs, 2)}
            if out[query]["floor"]["answers"] != [n]:
                raise RuntimeError(f"the bare C-FIND SCP gave {out[query]['floor']['answers']} answers, not {n}")
            log(f"C-FIND {query} ({n} answers): " + ", ".join(
                f"{name} p50 {v['p50_ms']} ms ({v['answers']} answers)" for name, v in out[query].items()))
    finally:
        for client in clients.values():
            await asyncio.to_thread(client.close)
    return out


async def _ingested(server: Any, items: Sequence[bytes], clients: int, who: str) -> dict[str, Any]:
    from bench.ingest import ingest

    result = await ingest(cast(Server, server), items, clients)  # ingest reads only .url and .cpu_seconds()
    if result["failures"]:
        raise RuntimeError(f"{who}: {result['failures']} uploads failed: {result['first_failure']}")
    log(f"REST POST /instances, {clients} client(s), {who}: {result['instances_per_s']} inst/s, "
        f"p50 {result['latency_p50_ms']} ms, server CPU {result['server_cpu_ms_per_instance']} ms/req")
    return result


async def run(instances: int, runs: int, with_orthanc: bool, workdir: pathlib.Path) -> dict[str, Any]:
    from bench.dimse import write_store
    from bench.store import StoreShape

    patients = max(1, instances // StoreShape(patients=1).per_patient)
    log(f"writing the store of {patients} patients to files")
    files = await asyncio.to_thread(write_store, patients, workdir / "store")
    items = [f.read_bytes() for f in files]
    scratch = workdir / "scratch"
    results: dict[str, Any] = {
        "meta": {"started": datetime.datetime.now().isoformat(timespec="seconds"), "instances": len(files),
                 "runs": runs, "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(),
                 "python": sys.version.split()[0], "platform": platform.platform(), "orthanc": with_orthanc,
                 "client": "dcmtk storescu +sd (TCP_NODELAY=1); pynetdicom C-FIND SCU; aiohttp (bench/ingest.py)"},
        "cstore": {}, "cfind": {}, "rest": {},
    }

    log(f"pydicom: parsing {len(items)} instances")
    results["parse"] = await asyncio.to_thread(measure_parse, items)
    log(f"parse_instance {results['parse']['parse_instance_ms']} ms, dcmread {results['parse']['dcmread_ms']} ms")

    with bare("cstore", workdir / "bare") as scp:
        for associations in (1, 4):
            results["cstore"][str(associations)] = {"floor": await _stored(
                scp.port, FLOOR_AET, files, associations, scratch / "floor", scp.pid, "floor")}
            if with_orthanc and associations == 1:
                with orthanc(workdir / "orthanc-cstore-1") as o:
                    results["cstore"]["1"]["orthanc"] = await _stored(
                        o.process.dicom_port, o.process.aet, files, 1, scratch / "orthanc", o.pid, "orthanc")

    with contextlib.ExitStack() as stack:
        finder = stack.enter_context(bare("cfind", workdir / "bare"))
        targets = {"floor": (finder.port, FLOOR_AET, finder.pid)}
        if with_orthanc:
            o = stack.enter_context(orthanc(workdir / "orthanc-cstore-4"))
            port, aet = o.process.dicom_port, o.process.aet
            results["cstore"]["4"]["orthanc"] = await _stored(port, aet, files, 4, scratch / "orthanc", o.pid,
                                                              "orthanc")
            heads = await asyncio.to_thread(_series_heads, patients, workdir / "series-heads")
            log(f"orthanc: {len(heads)} more instances so that it holds the {FIND_PATIENTS}-patient store's studies")
            await _stored(port, aet, heads, 4, scratch / "orthanc", o.pid, "orthanc (C-FIND store)")
            targets["orthanc"] = (port, aet, o.pid)
        results["cfind"] = await measure_cfind(targets, runs)

    with bare("http", workdir / "bare") as app:
        for clients in (1, 4):
            results["rest"][str(clients)] = {"floor": await _ingested(app, items, clients, "floor")}
    if with_orthanc:
        for clients in (1, 4):
            with orthanc(workdir / f"orthanc-rest-{clients}") as o:
                results["rest"][str(clients)]["orthanc"] = await _ingested(o, items, clients, "orthanc")

    results["meta"]["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    results["meta"]["loadavg_end"] = os.getloadavg()
    return results


# -- report ----------------------------------------------------------------------------------------


def rows(results: dict[str, Any]) -> list[Row]:
    """Row.lite holds the floor; a target is on floor/Orthanc (bench/dimse.py, bench/report.py)."""
    def get(section: str, key: str, who: str, field: str) -> float | None:
        value = results.get(section, {}).get(key, {}).get(who, {}).get(field)
        return value if isinstance(value, (int, float)) else None

    out: list[Row] = []
    for n, target in (("1", TARGETS["ingest_1"]), ("4", TARGETS["ingest_4"])):
        label = f"C-STORE, {n} association{'s' if n != '1' else ''}"
        out.append(Row(label, "inst/s", get("cstore", n, "floor", "instances_per_s"),
                       get("cstore", n, "orthanc", "instances_per_s"), True, target))
        out.append(Row(f"{label}: server CPU", "ms/inst", get("cstore", n, "floor", "server_cpu_ms_per_instance"),
                       get("cstore", n, "orthanc", "server_cpu_ms_per_instance"), False))
    for query, n_answers in FIND_ANSWERS.items():
        orthanc_answers = results.get("cfind", {}).get(query, {}).get("orthanc", {}).get("answers")
        note = "" if orthanc_answers in (None, [n_answers]) else f"Orthanc gave {orthanc_answers} answers"
        out.append(Row(f"C-FIND p50, {n_answers} answers ({query})", "ms", get("cfind", query, "floor", "p50_ms"),
                       get("cfind", query, "orthanc", "p50_ms"), False,
                       TARGETS["cfind_p50"] if query == "study_name_wildcard" else None, note))
    for n, target in (("1", INGEST_1_TARGET), ("4", INGEST_4_TARGET)):
        label = f"REST POST /instances, {n} client{'s' if n != '1' else ''}"
        out.append(Row(label, "inst/s", get("rest", n, "floor", "instances_per_s"),
                       get("rest", n, "orthanc", "instances_per_s"), True, target))
        out.append(Row(f"{label}: p50", "ms", get("rest", n, "floor", "latency_p50_ms"),
                       get("rest", n, "orthanc", "latency_p50_ms"), False))
        out.append(Row(f"{label}: server CPU", "ms/req", get("rest", n, "floor", "server_cpu_ms_per_instance"),
                       get("rest", n, "orthanc", "server_cpu_ms_per_instance"), False))
    parse = results.get("parse", {})
    out.append(Row("orthanc_lite parse_instance(bytes)", "ms/inst", parse.get("parse_instance_ms"), None, False))
    out.append(Row("pydicom dcmread(stop_before_pixels)", "ms/inst", parse.get("dcmread_ms"), None, False))
    return out


def verdict(row: Row) -> str:
    """Whether the floor itself meets the target; if not, no orthanc_lite can."""
    if row.target is None or row.ratio is None:
        return row.note
    sign = ">=" if row.higher_is_better else "<="
    ok = row.ratio >= row.target if row.higher_is_better else row.ratio <= row.target
    return f"{sign}{row.target:g}x: {'within the floor' if ok else 'OUT OF REACH'}"


def table(table_rows: list[Row]) -> str:
    lines = [("figure", "unit", "floor", "Orthanc", "floor/Orthanc", "target")]
    lines += [(r.figure, r.unit, _fmt(r.lite), _fmt(r.orthanc), "-" if r.ratio is None else f"{r.ratio:.2f}x",
               verdict(r)) for r in table_rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = []
    for n, line in enumerate(lines):
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1])] + [line[i].rjust(widths[i]) for i in (2, 3, 4)]
        text.append("  ".join(cells + [line[5]]).rstrip())
        if n == 0:
            text.append("  ".join("-" * w for w in widths))
    return "\n".join(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="400 instances, 5 runs per C-FIND latency")
    parser.add_argument("--instances", type=int, help="instances to store and upload (default 2,000; 400 with --quick)")
    parser.add_argument("--runs", type=int, help="runs per C-FIND latency (default 20, 5 with --quick)")
    parser.add_argument("--no-orthanc", action="store_true", help="measure the floor only")
    parser.add_argument("--json", help="write the results here instead of bench/results/<timestamp>-floor.json")
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)  # child process: one bare server
    args = parser.parse_args(argv)
    args.instances = args.instances or (400 if args.quick else 2000)
    args.runs = args.runs or (5 if args.quick else 20)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    with_orthanc = not args.no_orthanc and ORTHANC_AVAILABLE
    if not args.no_orthanc and not ORTHANC_AVAILABLE:
        log("real Orthanc is not installed at /usr/sbin/Orthanc: measuring the floor only")
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="bench-floor-", dir="/tmp"))
    try:
        results = asyncio.run(run(args.instances, args.runs, with_orthanc, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    table_rows = rows(results)
    results["table"] = [{"figure": r.figure, "unit": r.unit, "floor": r.lite, "orthanc": r.orthanc,
                         "ratio": None if r.ratio is None else round(r.ratio, 3), "target": r.target,
                         "higher_is_better": r.higher_is_better, "verdict": verdict(r)} for r in table_rows]
    print()
    print(f"{results['meta']['instances']} instances, {args.runs} runs per C-FIND latency, "
          f"{results['meta']['cpus']} CPUs")
    print(table(table_rows))
    report.write_results(results, args.json, args.quick, '-floor')
    return 0


if __name__ == "__main__":
    sys.exit(main())
