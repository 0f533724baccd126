"""Profile orthanc_lite while it ingests part of the bench store: where does the server's CPU time go?

    python -m bench.profile [--instances 4000] [--clients 4] [--gil] [--out FILE] [--top 30]

Starts `python -m orthanc_lite` on fresh storage, attaches py-spy (`pip install py-spy` into the venv; it is not a
project dependency) with `record --format raw`, uploads the instances, stops py-spy and prints the functions with the
most samples, by self time and by inclusive time, plus the share of samples per thread. With --gil only samples where
the thread holds the GIL are kept: on a loaded server that is the time that serialises the whole process.
The raw collapsed stacks stay in --out (feed them to flamegraph.pl or speedscope).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from .ingest import ingest
from .servers import LITE, start
from .store import StoreShape, load


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(pathlib.Path(sys.executable).with_name("py-spy"))
    if not pathlib.Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def summarize(raw: pathlib.Path, top: int) -> str:
    """Self and inclusive sample counts per function from py-spy's raw (collapsed) output."""
    self_counts: collections.Counter[str] = collections.Counter()
    incl_counts: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        threads[frames[0]] += count
        leaf = frames[-1]
        self_counts[_short(leaf)] += count
        for frame in set(_short(f) for f in frames[1:]):
            incl_counts[frame] += count
    lines = [f"{total} samples"]
    lines.append("\nby thread:")
    for name, count in threads.most_common(10):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    lines.append("\nself time:")
    for name, count in self_counts.most_common(top):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    lines.append("\ninclusive time:")
    for name, count in incl_counts.most_common(top):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines)


def _short(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = pathlib.PurePath(path).parts
    short = "/".join(parts[-2:]) if parts else path
    return f"{name} ({short})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--gil", action="store_true", help="only samples holding the GIL")
    parser.add_argument("--idle", action="store_true", help="include idle (waiting) samples")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--out", default=None, help="raw collapsed stacks (default: a temporary file)")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    py_spy = _py_spy()
    items = load(StoreShape(patients=200))[: args.instances]
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="orthanc-profile-"))
    out = pathlib.Path(args.out) if args.out else workdir / "profile.raw"
    server = start(LITE, workdir)
    try:
        cmd = [py_spy, "record", "--pid", str(server.pid), "--format", "raw", "--output", str(out),
               "--rate", str(args.rate), "--threads"]
        if args.gil:
            cmd.append("--gil")
        if args.idle:
            cmd.append("--idle")
        spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # let py-spy attach before the load starts
        result = asyncio.run(ingest(server, items, args.clients))
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
    finally:
        server.stop()
    print(f"ingest: {result['instances_per_s']} inst/s with {args.clients} clients, "
          f"{result['server_cpu_ms_per_instance']} ms server CPU per instance")
    print(summarize(out, args.top))
    print(f"\nraw stacks: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
