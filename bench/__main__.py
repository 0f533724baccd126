"""python -m bench [--quick] [--patients N] [--no-orthanc] [--runs N] [--subset N] [--rounds N] [--sections find,dimse]

orthanc_lite (`python -m orthanc_lite`) and real Orthanc (when /usr/sbin/Orthanc exists) run side by side on fresh
storage and free ports, with StableAge 5 s:
  1. timed REST ingest: `--subset` instances with 1 client and `--subset` with 4 clients into each server, split in
     `--rounds` rounds that alternate the servers (same instances for both), so that outside load hits both alike;
  2. the rest of the store into each server in turn with 4 clients, reading its RSS at 25/50/75/100% of the store;
  3. once no Stable* change has been written for 6 s: GET /studies?expand, /series?expand, /patients?expand and
     /instances (p50/p95 over `--runs` runs) and GET /{studies,instances}/{id}, alternating the servers request by
     request; then the whole /changes log walked with limit=1000 on each;
  4. the optional sections (bench/find.py, bench/dimse.py) if they exist, with both servers loaded.
Prints a table (each figure for both servers, the ratio lite/Orthanc and the targets of issue 2 item 12) and writes
everything to bench/results/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import pathlib
import platform
import shutil
import statistics
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

LIST_PATHS = ("/studies?expand", "/series?expand", "/patients?expand", "/instances")
CHECKPOINTS = (25, 50, 75, 100)
STABLE_AGE = 5   # seconds; reads start once the Stable* changes that follow the ingest are written (both servers)
# Real Orthanc runs here without plugins, so orthanc_lite's DICOMweb metadata cache (built for every series that turns
# stable) is off too: both servers do the same work (bench/dimse.py LITE_AS_ORTHANC; the dicomweb section starts
# its own pair with the plugin).
SERVER_CONFIG = {"StableAge": STABLE_AGE, "DicomWeb": {"EnableMetadataCache": False}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 instances, 5 runs per latency")
    parser.add_argument("--patients", type=int, help="patients in the store (x2 studies x2 series x25 instances; "
                                                     "default 200 = 20,000 instances, 20 with --quick)")
    parser.add_argument("--subset", type=int, help="instances per timed ingest subset (default 2,000, 200 with --quick)")
    parser.add_argument("--runs", type=int, help="runs per latency figure (default 20, 5 with --quick)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="the timed ingest subsets are split in this many rounds alternating the servers "
                             "(default 4, 2 with --quick)")
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
    args.rounds = args.rounds or (2 if args.quick else 4)
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


async def _system(server: Server) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/system") as resp:
        return await resp.json()


async def _statistics(server: Server) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/statistics") as resp:
        return await resp.json()


def _pool(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several timed ingests of the same kind -> one figure (pooled rate, plus each round's)."""
    instances = sum(p["instances"] for p in parts)
    seconds = sum(p["seconds"] for p in parts)
    cpu = sum(p["server_cpu_s"] for p in parts)
    return {"instances": instances, "clients": parts[0]["clients"], "seconds": round(seconds, 3),
            "instances_per_s": round(instances / seconds, 1) if seconds else None,
            "rounds_per_s": [p["instances_per_s"] for p in parts],
            "median_round_per_s": statistics.median(p["instances_per_s"] for p in parts),
            "failures": sum(p["failures"] for p in parts),
            "latency_p50_ms": statistics.median(p["latency_p50_ms"] for p in parts),
            "latency_p95_ms": max(p["latency_p95_ms"] for p in parts),
            "server_cpu_s": round(cpu, 2), "client_cpu_s": round(sum(p["client_cpu_s"] for p in parts), 2),
            "server_cpu_ms_per_instance": round(cpu * 1000 / instances, 3) if instances else None}


async def timed_ingests(servers: list[Server], items: list[bytes], subset: int, rounds: int,
                        out: dict[str, dict[str, Any]]) -> int:
    """1 client then 4 clients, `rounds` times, each on the next slice of the store, alternating the servers (same
    slices for each); answers how many instances each server now holds."""
    chunk = max(1, subset // rounds)
    parts: dict[str, dict[int, list[dict[str, Any]]]] = {s.name: {1: [], 4: []} for s in servers}
    pos = 0
    for r in range(rounds):
        for clients in (1, 4):
            part = items[pos:pos + chunk]
            pos += chunk
            for server in (servers if r % 2 == 0 else list(reversed(servers))):
                result = await ingest(server, part, clients)
                if result["failures"]:
                    raise RuntimeError(f"{server.name}: {result['failures']} uploads failed: {result['first_failure']}")
                parts[server.name][clients].append(result)
                log(f"  round {r + 1}/{rounds}, {clients} client(s), {server.name}: {result['instances_per_s']} inst/s")
    for server in servers:
        out[server.name]["ingest_1"] = _pool(parts[server.name][1])
        out[server.name]["ingest_4"] = _pool(parts[server.name][4])
    return pos


async def bulk_ingest(server: Server, items: list[bytes], done: int, out: dict[str, Any]) -> None:
    """The rest of the store with 4 clients, reading the server's RSS at 25/50/75/100% of the store."""
    total = len(items)
    rss: dict[str, float] = {}
    points: list[tuple[int, float]] = [(done, round(server.rss_mib(), 1))]
    parts = []
    for pct in CHECKPOINTS:
        target = total * pct // 100
        if target > done:
            log(f"{server.name}: ingest up to {pct}% of the store ({target} instances) with 4 clients")
            part = await ingest(server, items[done:target], 4)
            if part["failures"]:
                raise RuntimeError(f"{server.name}: {part['failures']} uploads failed: {part['first_failure']}")
            parts.append(part)
            done = target
        rss[str(pct)] = round(server.rss_mib(), 1)
        points.append((done, rss[str(pct)]))
    if parts:
        out["ingest_bulk"] = _pool(parts)
    out["rss_mib"] = rss
    out["rss_points"] = points
    out["rss_growth"] = round(rss["100"] / rss["25"], 3) if rss.get("25") else None
    out["statistics"] = await _statistics(server)
    if out["statistics"].get("CountInstances") != total:
        raise RuntimeError(f"{server.name} holds {out['statistics'].get('CountInstances')} instances, not {total}")
    out["storage_mib"] = round(storage_bytes(server) / 2**20, 1)


async def measure_reads(servers: list[Server], args: argparse.Namespace, out: dict[str, dict[str, Any]]) -> None:
    """List/expand and single-resource latency (alternating servers), then the /changes walk of each."""
    for server in servers:
        out[server.name]["lists"] = {}
        out[server.name]["single"] = {}
    for path in LIST_PATHS:
        log(f"GET {path} x{args.runs}")
        for name, figures in (await list_latency(servers, path, args.runs)).items():
            out[name]["lists"][path] = figures
            log(f"  {name}: p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms")
    for level in ("studies", "instances"):
        for name, figures in (await single_resource_latency(servers, level, max(50, args.runs * 5))).items():
            out[name]["single"][level] = figures
    for server in servers:
        log(f"{server.name}: walk /changes with limit=1000")
        out[server.name]["changes"] = await changes_walk(server, 1000)
        c = out[server.name]["changes"]
        log(f"  {c['changes']} changes in {c['pages']} pages, {c['seconds']} s")
        out[server.name]["rss_mib_after_reads"] = round(server.rss_mib(), 1)
        out[server.name]["peak_rss_mib"] = round(server.peak_rss_mib(), 1)


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
                 "subset": min(args.subset, len(items) // 4), "runs": args.runs, "rounds": args.rounds,
                 "stable_age": STABLE_AGE, "loadavg_start": os.getloadavg(),
                 "cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(),
                 "servers": names},
    }
    servers: dict[str, Server] = {}
    try:
        for name in names:
            log(f"starting {name} (storage under {workdir / name})")
            servers[name] = start(name, workdir, SERVER_CONFIG)
            system = await _system(servers[name])
            results[name] = {"version": system.get("Version"), "pid": servers[name].pid,
                             "url": servers[name].url, "rss_mib_empty": round(servers[name].rss_mib(), 1)}
        running = list(servers.values())
        subset = min(args.subset, len(items) // 4)
        log(f"timed ingests: {subset} instances with 1 client and {subset} with 4 clients per server, "
            f"in {args.rounds} rounds alternating the servers")
        done = await timed_ingests(running, items, subset, args.rounds, results)
        for server in running:
            await bulk_ingest(server, items, done, results[server.name])
        log(f"waiting for the Stable* changes (StableAge {STABLE_AGE} s)")
        results["meta"]["settle_seconds"] = await settle(running, quiet=STABLE_AGE + 1)
        await measure_reads(running, args, results)
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
    results["meta"]["loadavg_end"] = os.getloadavg()
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
    report.write_results(results, args.json, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
