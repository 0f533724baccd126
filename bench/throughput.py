"""Ingest throughput (issue 13): orthanc_lite, real Orthanc and the libraries' floor, in the same run.

    python -m bench.throughput [--instances 2000] [--rounds 2] [--no-orthanc] [--json OUT]

Four servers run side by side on fresh storage: orthanc_lite, real Orthanc 1.10.1 (TCP_NODELAY=1, as bench/dimse.py
starts it), a bare pynetdicom C-STORE SCP with a no-op handler and a bare aiohttp POST /instances (bench/floor.py's,
each in its own process). Each of `--rounds` rounds sends a fresh slice of bench/store.py's store (so that no server
sees a duplicate) to every server, in an order that alternates round by round:
  C-STORE with dcmtk storescu over 1 association, then over 4 parallel associations;
  REST POST /instances (bench/ingest.py) with 1 client, then with 4.
Each figure is the pooled rate over the rounds, with the per-round rates (the run-to-run spread), the server's CPU per
instance and, for REST, the upload latency p50. Ratios: lite / Orthanc and lite / floor; the targets of issue 13 are
C-STORE >= 0.7x the floor (1 and 4 associations, and 4 at least as fast as 1), REST >= 0.85x Orthanc with 1 client and
>= 0.75x with 4. Also a section of `python -m bench` (`run()`), which then reports these figures in its table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import pathlib
import shutil
import sys
import tempfile
import time
from typing import Any, Final

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.dimse import LITE_AS_ORTHANC, orthanc_process, storescu_ingest, write_store  # noqa: E402
from bench.floor import FLOOR_AET, BareServer  # noqa: E402
from bench.ingest import ingest  # noqa: E402
from bench.servers import LITE, ORTHANC, ORTHANC_AVAILABLE, Server  # noqa: E402

FLOOR: Final = "floor"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] throughput: {message}", flush=True)

CSTORE_FLOOR_TARGET: Final = 0.7   # lite / no-op pynetdicom SCP, 1 and 4 associations
REST_TARGETS: Final = {1: 0.85, 4: 0.75}   # lite / Orthanc
MODES: Final = (("cstore", 1), ("cstore", 4), ("rest", 1), ("rest", 4))


async def _cstore(port: int, aet: str, files: list[pathlib.Path], associations: int, scratch: pathlib.Path,
                  pid: int, who: str) -> dict[str, Any]:
    result = await storescu_ingest(port, aet, files, associations, scratch / who, pid)
    if result["failed_clients"]:
        raise RuntimeError(f"{who}: storescu failed: {result.get('first_failure')}")
    return result


async def _rest(target: Any, items: list[bytes], clients: int, who: str) -> dict[str, Any]:
    result = await ingest(target, items, clients)
    if result["failures"]:
        raise RuntimeError(f"{who}: {result['failures']} uploads failed: {result['first_failure']}")
    return result


def _pool(parts: list[dict[str, Any]]) -> dict[str, Any]:
    n = sum(p["instances"] for p in parts)
    s = sum(p["seconds"] for p in parts)
    out: dict[str, Any] = {"instances": n, "seconds": round(s, 3), "instances_per_s": round(n / s, 1),
                           "rounds_per_s": [p["instances_per_s"] for p in parts]}
    cpu = [p["server_cpu_ms_per_instance"] for p in parts if p.get("server_cpu_ms_per_instance") is not None]
    if cpu:
        out["server_cpu_ms_per_instance"] = round(sum(cpu) / len(cpu), 3)
    p50 = [p["latency_p50_ms"] for p in parts if p.get("latency_p50_ms") is not None]
    if p50:
        out["latency_p50_ms"] = round(sorted(p50)[len(p50) // 2], 2)
    return out


BASE: Final = "base"  # --base: an unchanged build of orthanc_lite, for an A/B in the same run


def _spawn_base(tree: pathlib.Path, workdir: pathlib.Path) -> Any:
    """orthanc_lite as spawn_orthanc_lite starts it, but importing the package from another worktree."""
    from tests.e2e.orthanc_peer import ServerProcess, _base_config

    cfg = _base_config(workdir, "OrthancLite")
    cfg.update({**LITE_AS_ORTHANC, "AuthenticationEnabled": False})
    argv = [sys.executable, "-m", "orthanc_lite", str(workdir / "config.json")]
    env = {"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(tree)}
    return ServerProcess("orthanc_lite", workdir, cfg, argv, extra_env=env).start(60)


async def measure(instances: int, rounds: int, with_orthanc: bool, workdir: pathlib.Path,
                  modes: tuple[tuple[str, int], ...] = MODES, base: pathlib.Path | None = None) -> dict[str, Any]:
    """{mode: {server: pooled figures}} for the four modes and the three (or two) servers."""
    patients = max(1, -(-instances // 100))
    files = (await asyncio.to_thread(write_store, patients, workdir / "store"))[:instances]
    chunk = max(1, len(files) // (len(modes) * rounds))
    scratch = workdir / "scratch"
    parts: dict[str, dict[str, list[dict[str, Any]]]] = {f"{kind}_{n}": {} for kind, n in modes}
    with contextlib.ExitStack() as stack:
        from tests.e2e.orthanc_peer import spawn_orthanc_lite

        lite = Server(LITE, spawn_orthanc_lite(workdir / "lite", {**LITE_AS_ORTHANC, "AuthenticationEnabled": False},
                                               timeout=60))
        stack.callback(lite.stop)
        servers: dict[str, Any] = {LITE: lite}
        if with_orthanc and ORTHANC_AVAILABLE:
            orthanc = Server(ORTHANC, orthanc_process(workdir / "orthanc").start(60))
            stack.callback(orthanc.stop)
            servers[ORTHANC] = orthanc
        if base is not None:
            other = Server(LITE, _spawn_base(base, workdir / "base"))
            stack.callback(other.stop)
            servers[BASE] = other
        scp = BareServer("cstore", workdir / "bare")
        stack.callback(scp.stop)
        app = BareServer("http", workdir / "bare")
        stack.callback(app.stop)
        pos = 0
        for r in range(rounds):
            for kind, n in modes:
                part = files[pos:pos + chunk]
                pos += chunk
                names = [LITE, *([ORTHANC] if ORTHANC in servers else []), *([BASE] if BASE in servers else []), FLOOR]
                if r % 2:
                    names.reverse()
                for who in names:
                    if kind == "cstore":
                        if who == FLOOR:
                            res = await _cstore(scp.port, FLOOR_AET, part, n, scratch, scp.pid, who)
                        else:
                            proc = servers[who].process
                            res = await _cstore(proc.dicom_port, proc.aet, part, n, scratch, proc.pid, who)
                    else:
                        items = [f.read_bytes() for f in part]
                        res = await _rest(app if who == FLOOR else servers[who], items, n, who)
                    parts[f"{kind}_{n}"].setdefault(who, []).append(res)
                    log(f"round {r + 1}/{rounds}, {kind} x{n}, {who}: {res['instances_per_s']} inst/s, "
                        f"server CPU {res.get('server_cpu_ms_per_instance')} ms/instance")
    shutil.rmtree(scratch, ignore_errors=True)
    return {mode: {who: _pool(ps) for who, ps in per.items()} for mode, per in parts.items()}


def verdicts(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """One line per figure: lite, Orthanc, floor, lite/Orthanc, lite/floor, the target and whether it is met."""
    out = []
    for kind, n in MODES:
        mode = figures.get(f"{kind}_{n}", {})
        if not mode:
            continue
        lite = mode.get(LITE, {}).get("instances_per_s")
        orthanc = mode.get(ORTHANC, {}).get("instances_per_s")
        floor = mode.get(FLOOR, {}).get("instances_per_s")
        row: dict[str, Any] = {
            "figure": f"{'C-STORE' if kind == 'cstore' else 'REST ingest'}, {n} "
                      f"{'association' if kind == 'cstore' else 'client'}{'s' if n > 1 else ''}",
            "lite": lite, "orthanc": orthanc, "floor": floor,
            "lite_spread": mode.get(LITE, {}).get("rounds_per_s"),
            "lite_cpu_ms": mode.get(LITE, {}).get("server_cpu_ms_per_instance"),
            "base": mode.get(BASE, {}).get("instances_per_s"),
            "base_cpu_ms": mode.get(BASE, {}).get("server_cpu_ms_per_instance"),
            "orthanc_cpu_ms": mode.get(ORTHANC, {}).get("server_cpu_ms_per_instance"),
            "vs_orthanc": round(lite / orthanc, 2) if lite and orthanc else None,
            "vs_floor": round(lite / floor, 2) if lite and floor else None,
        }
        if kind == "rest":
            row["lite_p50_ms"] = mode.get(LITE, {}).get("latency_p50_ms")
            row["orthanc_p50_ms"] = mode.get(ORTHANC, {}).get("latency_p50_ms")
            row["target"] = f">= {REST_TARGETS[n]}x Orthanc"
            row["met"] = None if row["vs_orthanc"] is None else row["vs_orthanc"] >= REST_TARGETS[n]
        else:
            row["target"] = f">= {CSTORE_FLOOR_TARGET}x floor"
            row["met"] = None if row["vs_floor"] is None else row["vs_floor"] >= CSTORE_FLOOR_TARGET
        out.append(row)
    one = figures.get("cstore_1", {}).get(LITE, {}).get("instances_per_s")
    four = figures.get("cstore_4", {}).get(LITE, {}).get("instances_per_s")
    if one and four:
        out.append({"figure": "C-STORE, 4 associations / 1", "lite": round(four / one, 2), "target": ">= 1.0",
                    "met": four >= one})
    return out


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'figure':<30}{'lite':>8}{'Orthanc':>9}{'floor':>8}{'/Orthanc':>9}{'/floor':>8}"
            f"{'CPU ms lite/Orth':>18}{'p50 ms lite/Orth':>18}  target")
    lines = [head, "-" * len(head)]

    def fmt(value: Any, width: int) -> str:
        return f"{'-' if value is None else value:>{width}}"

    for row in rows:
        cpu = f"{row.get('lite_cpu_ms') or '-'}/{row.get('orthanc_cpu_ms') or '-'}" if "lite_cpu_ms" in row else ""
        p50 = f"{row.get('lite_p50_ms') or '-'}/{row.get('orthanc_p50_ms') or '-'}" if "lite_p50_ms" in row else ""
        met = "" if row.get("met") is None else ("ok" if row["met"] else "MISSED")
        lines.append(f"{row['figure']:<30}{fmt(row.get('lite'), 8)}{fmt(row.get('orthanc'), 9)}"
                     f"{fmt(row.get('floor'), 8)}{fmt(row.get('vs_orthanc'), 9)}{fmt(row.get('vs_floor'), 8)}"
                     f"{cpu:>18}{p50:>18}  {row.get('target', '')} {met}")
        if row.get("lite_spread"):
            lines.append(f"{'':<30}  lite per round: {row['lite_spread']}")
        if row.get("base"):
            lines.append(f"{'':<30}  unchanged build (--base): {row['base']}/s, CPU {row.get('base_cpu_ms')} ms")
    return "\n".join(lines)


async def run(quick: bool = False, workdir: str | None = None) -> dict[str, Any]:
    """The section of `python -m bench`: its own servers and store slice; figures in the harness's table format."""
    base = pathlib.Path(workdir or tempfile.mkdtemp(prefix="bench-throughput-")) / "throughput"
    figures = await measure(400 if quick else 2000, 2, True, base)
    shutil.rmtree(base, ignore_errors=True)
    out: dict[str, Any] = {}
    for mode, per in figures.items():
        out[f"issue13_{mode}"] = {"lite": per.get(LITE), "orthanc": per.get(ORTHANC), "floor": per.get(FLOOR)}
    out["issue13_verdicts"] = verdicts(figures)
    print(table(out["issue13_verdicts"]), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    from bench import report

    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=2000, help="instances in all (split over rounds and modes)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-orthanc", action="store_true")
    parser.add_argument("--cstore-only", action="store_true", help="the two C-STORE modes only")
    parser.add_argument("--base", type=pathlib.Path, help="also measure the orthanc_lite of this worktree (A/B)")
    parser.add_argument("--json", help="write the results here instead of bench/results/<timestamp>-throughput.json")
    args = parser.parse_args(argv)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    try:
        started = datetime.datetime.now().isoformat(timespec="seconds")
        load_start = os.getloadavg()
        modes = MODES[:2] if args.cstore_only else MODES
        figures = asyncio.run(measure(args.instances, args.rounds, not args.no_orthanc, workdir, modes, args.base))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = verdicts(figures)
    print(table(rows))
    report.write_results({"meta": {"started": started, "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
                                   "instances": args.instances, "rounds": args.rounds, "cpus": os.cpu_count()},
                          "figures": figures, "verdicts": rows}, args.json, False, "-throughput")
    return 0


if __name__ == "__main__":
    sys.exit(main())
