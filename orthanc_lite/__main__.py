"""python -m orthanc_lite [configuration.json | folder] [--verbose | --trace] [--trace-dicom]"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys

from . import log
from .config import ConfigError, check_startup_security, load
from .server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orthanc_lite", description="An Orthanc-compatible DICOM server")
    parser.add_argument("config", nargs="*", help="configuration file(s) or folder (Orthanc's format)")
    parser.add_argument("--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--trace", action="store_true", help="log at DEBUG level")
    parser.add_argument("--trace-dicom", action="store_true", help="log the DICOM network exchanges")
    args = parser.parse_args(argv)
    log.setup("trace" if args.trace else "verbose" if args.verbose else "default", args.trace_dicom)
    try:
        settings = load(args.config or None)
        check_startup_security(settings)
    except ConfigError as exc:
        print(f"orthanc_lite: bad configuration: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_run(settings))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"orthanc_lite: {exc}", file=sys.stderr)
        return 1
    return 0


async def _run(settings: object) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serve(settings):  # type: ignore[arg-type]
        # Everything alive once started (modules, settings, pools) lives as long as the process: keep it out
        # of the collector's full passes, which otherwise took 20-30 ms and showed as latency spikes. Only
        # the program does this; an application embedding serve() decides for its own process.
        gc.freeze()
        await stop.wait()


if __name__ == "__main__":
    sys.exit(main())
