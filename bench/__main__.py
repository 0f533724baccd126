"""python -m bench [--quick] [--patients N] [--no-orthanc] [--runs N] [--subset N] [--sections find,dimse] [--keep]

For each server (orthanc_lite as `python -m orthanc_lite`, then real Orthanc when /usr/sbin/Orthanc exists), on fresh
storage and free ports:
  1. REST ingest with 1 client on a fixed subset of the store, then with 4 clients on the next subset (instances/s);
  2. the rest of the store with 4 clients, reading the server's RSS at 25/50/75/100% of the store;
  3. once the Stable* changes are written (StableAge 5 s on both): GET /studies?expand, /series?expand, /patients?expand, /instances: p50/p95 over --runs runs; GET /{level}/{id};
  4. the whole /changes log walked with limit=1000.
Then, with both servers loaded, the optional sections (bench/find.py, bench/dimse.py) if they exist. Prints a table
(each figure for both servers and the ratio lite/Orthanc, with the targets of issue 2 item 12) and writes everything
to bench/results/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import pathlib
import platform
import shutil
import sys
import tempfile
import time
from typing import Any

import aiohttp

from . import report, sections
from .ingest import ingest
from .reads import changes_walk, list_latency, settle, single_resource_latency
from .servers import LITE, ORTHANC, ORTHANC_AVAILABLE, Server, start, storage_bytes
from .store import StoreShape, load

RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"
LIST_PATHS = ("/studies?expand", "/series?expand", "/patients?expand", "/instances")
CHECKPOINTS = (25, 50, 75, 100)
STABLE_AGE = 5   # seconds; reads start once the Stable* changes that follow the ingest are written (both servers)
SERVER_CONFIG = {"StableAge": STABLE_AGE}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 instances, 5 runs per latency")
    parser.add_argument("--patients", type=int, help="patients in the store (x2 studies x2 series x25 instances; "
                                                     "default 200 = 20,000 instances, 20 with --quick)")
    parser.add_argument("--subset", type=int, help="instances per timed ingest subset (default 2,000, 200 with --quick)")
    parser.add_argument("--runs", type=int, help="runs per latency figure (default 20, 5 with --quick)")
    parser.add_argument("--no-orthanc", action="store_true", help="measure orthanc_lite only")
    parser.add_argument("--only", choices=(LITE, ORTHANC), help="measure one server only")
    parser.add_argument("--sections", default=None,
                        help=f"comma-separated optional sections to run (default: those present of "
                             f"{', '.join(sections.OPTIONAL_SECTIONS)}); 'none' for none")
    parser.add_argument("--workdir", help="where the servers' storage goes (default: a fresh temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the storage folders afterwards")
    parser.add_argument("--json", help="write the results here instead of bench/results/<timestamp>.json")
    args = parser.parse_args(argv)
    args.patients = args.patients or (20 if args.quick else 200)
    args.subset = args.subset or (200 if args.quick else 2000)
    args.runs = args.runs or (5 if args.quick else 20)
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


async def _system(server: Server) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/system") as resp:
        return await resp.json()


async def _statistics(server: Server) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/statistics") as resp:
        return await resp.json()


async def measure_server(server: Server, items: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    """Ingest the whole store into a fresh server, then measure the read side."""
    total = len(items)
    subset = min(args.subset, total // 4)
    system = await _system(server)
    out: dict[str, Any] = {"version": system.get("Version"), "pid": server.pid, "url": server.url,
                           "rss_mib_empty": round(server.rss_mib(), 1)}
    log(f"{server.name} {out['version']}: ingest {subset} instances with 1 client")
    out["ingest_1"] = await ingest(server, items[:subset], 1)
    log(f"  {out['ingest_1']['instances_per_s']} inst/s")
    log(f"{server.name}: ingest {subset} instances with 4 clients")
    out["ingest_4"] = await ingest(server, items[subset:2 * subset], 4)
    log(f"  {out['ingest_4']['instances_per_s']} inst/s")

    done = 2 * subset
    rss: dict[str, float] = {}
    points: list[tuple[int, float]] = [(done, round(server.rss_mib(), 1))]
    bulk_seconds = 0.0
    bulk_count = 0
    bulk_cpu = 0.0
    for pct in CHECKPOINTS:
        target = total * pct // 100
        if target > done:
            log(f"{server.name}: ingest up to {pct}% of the store ({target} instances) with 4 clients")
            part = await ingest(server, items[done:target], 4)
            if part["failures"]:
                raise RuntimeError(f"{server.name}: {part['failures']} uploads failed: {part['first_failure']}")
            bulk_seconds += part["seconds"]
            bulk_count += part["instances"]
            bulk_cpu += part["server_cpu_s"]
            done = target
        rss[str(pct)] = round(server.rss_mib(), 1)
        points.append((done, rss[str(pct)]))
    out["ingest_bulk"] = {"instances": bulk_count, "seconds": round(bulk_seconds, 2),
                          "instances_per_s": round(bulk_count / bulk_seconds, 1) if bulk_seconds else None,
                          "server_cpu_s": round(bulk_cpu, 2)}
    out["rss_mib"] = rss
    out["rss_points"] = points
    out["rss_growth"] = round(rss["100"] / rss["25"], 3) if rss.get("25") else None
    out["statistics"] = await _statistics(server)
    if out["statistics"].get("CountInstances") != total:
        raise RuntimeError(f"{server.name} holds {out['statistics'].get('CountInstances')} instances, not {total}")
    out["storage_mib"] = round(storage_bytes(server) / 2**20, 1)
    log(f"{server.name}: waiting for the Stable* changes (StableAge {STABLE_AGE} s)")
    out["settle_seconds"] = await settle(server, quiet=STABLE_AGE + 1)

    out["lists"] = {}
    for path in LIST_PATHS:
        log(f"{server.name}: GET {path} x{args.runs}")
        out["lists"][path] = await list_latency(server, path, args.runs)
        log(f"  p50 {out['lists'][path]['p50_ms']} ms, p95 {out['lists'][path]['p95_ms']} ms")
    out["single"] = {}
    for level in ("studies", "instances"):
        out["single"][level] = await single_resource_latency(server, level, max(50, args.runs * 5))
    log(f"{server.name}: walk /changes with limit=1000")
    out["changes"] = await changes_walk(server, 1000)
    log(f"  {out['changes']['changes']} changes in {out['changes']['pages']} pages, {out['changes']['seconds']} s")
    out["rss_mib_after_reads"] = round(server.rss_mib(), 1)
    out["peak_rss_mib"] = round(server.peak_rss_mib(), 1)
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    shape = StoreShape(patients=args.patients)
    items = load(shape)
    names = [LITE, ORTHANC]
    if args.only:
        names = [args.only]
    if args.no_orthanc or not ORTHANC_AVAILABLE:
        if ORTHANC in names and not args.no_orthanc:
            log("real Orthanc is not installed at /usr/sbin/Orthanc: measuring orthanc_lite only")
        names = [n for n in names if n != ORTHANC]
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="orthanc-bench-"))
    results: dict[str, Any] = {
        "meta": {"started": datetime.datetime.now().isoformat(timespec="seconds"), "quick": args.quick,
                 "store": {"patients": shape.patients, "studies_per_patient": shape.studies,
                           "series_per_study": shape.series, "instances_per_series": shape.instances,
                           "matrix": shape.matrix, "instances": shape.total,
                           "mean_file_bytes": round(sum(map(len, items)) / len(items))},
                 "subset": min(args.subset, len(items) // 4), "runs": args.runs,
                 "cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(),
                 "servers": names},
    }
    servers: dict[str, Server] = {}
    try:
        for name in names:
            log(f"starting {name} (storage under {workdir / name})")
            servers[name] = start(name, workdir, SERVER_CONFIG)
            results[name] = await measure_server(servers[name], items, args)
        wanted = sections.available() if args.sections is None else \
            [s for s in args.sections.split(",") if s and s != "none"]
        if wanted and LITE in servers:
            lite, orthanc = servers[LITE], servers.get(ORTHANC)
            ctx = sections.Context(
                base_url_lite=lite.url, base_url_orthanc=orthanc.url if orthanc else None,
                dicom_port_lite=lite.process.dicom_port, dicom_port_orthanc=orthanc.process.dicom_port if orthanc else None,
                aet_lite=lite.process.aet, aet_orthanc=orthanc.process.aet if orthanc else None, host="127.0.0.1",
                runs=args.runs, quick=args.quick, workdir=str(workdir), store_instances=len(items),
                store_patients=shape.patients)
            results["sections"] = {}
            for name in wanted:
                log(f"section {name}")
                results["sections"][name] = await sections.run_section(name, ctx)
                if "error" in results["sections"][name] or "skipped" in results["sections"][name]:
                    log(f"  {results['sections'][name].get('error') or results['sections'][name].get('skipped')}")
    finally:
        for server in servers.values():
            server.stop()
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    results["meta"]["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = asyncio.run(main_async(args))
    table_rows = report.rows(results)
    results["table"] = [r.as_json() for r in table_rows]
    meta = results["meta"]
    print()
    print(f"store: {meta['store']['instances']} instances ({meta['store']['patients']} patients), "
          f"timed ingest subsets of {meta['subset']}, {meta['runs']} runs per latency, {meta['cpus']} CPUs")
    print(report.table(table_rows))
    path = pathlib.Path(args.json) if args.json else \
        RESULTS_DIR / f"{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
