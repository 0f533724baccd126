"""Figures -> a table: each figure for both servers, the ratio orthanc_lite / Orthanc, the target and whether it is met.

Ratios are always lite / Orthanc: above 1 is better for a throughput, below 1 is better for a latency.
"""

from __future__ import annotations

import datetime
import json
import pathlib
from dataclasses import dataclass
from typing import Any

# Targets of issue 2 item 12.
INGEST_1_TARGET = 1.0        # 1-client ingest >= 1.0 x Orthanc
INGEST_4_TARGET = 1.5        # 4-client ingest >= 1.5 x Orthanc
LATENCY_TARGET = 0.5         # list/expand latency <= 0.5 x Orthanc
FLAT_MEMORY_GROWTH = 1.25    # RSS at 100% of the store <= 1.25 x RSS at 25%: "flat"


@dataclass
class Row:
    figure: str
    unit: str
    lite: float | None
    orthanc: float | None
    higher_is_better: bool
    target: float | None = None    # on the ratio lite/orthanc (>= when higher is better, <= otherwise)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.lite is None or self.orthanc is None or self.orthanc == 0:
            return None
        return self.lite / self.orthanc

    @property
    def verdict(self) -> str:
        if self.target is None or self.ratio is None:
            return ""
        ok = self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target
        sign = ">=" if self.higher_is_better else "<="
        return f"{'ok' if ok else 'MISSED'} ({sign}{self.target:g}x)"

    def as_json(self) -> dict[str, Any]:
        return {"figure": self.figure, "unit": self.unit, "lite": self.lite, "orthanc": self.orthanc,
                "ratio": None if self.ratio is None else round(self.ratio, 3), "target": self.target,
                "higher_is_better": self.higher_is_better, "verdict": self.verdict, "note": self.note}


def _get(results: dict[str, Any], server: str, *path: str) -> float | None:
    node: Any = results.get(server)
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, (int, float)) else None


def rows(results: dict[str, Any]) -> list[Row]:
    out: list[Row] = []

    def add(figure: str, unit: str, path: tuple[str, ...], higher: bool, target: float | None = None,
            note: str = "") -> None:
        out.append(Row(figure, unit, _get(results, "orthanc_lite", *path), _get(results, "orthanc", *path), higher,
                       target, note))

    add("REST ingest, 1 client", "inst/s", ("ingest_1", "instances_per_s"), True, INGEST_1_TARGET)
    add("REST ingest, 4 clients", "inst/s", ("ingest_4", "instances_per_s"), True, INGEST_4_TARGET)
    add("REST ingest, rest of store (4 clients)", "inst/s", ("ingest_bulk", "instances_per_s"), True)
    add("server CPU per instance, 4 clients", "ms", ("ingest_4", "server_cpu_ms_per_instance"), False)
    add("upload latency p50, 4 clients", "ms", ("ingest_4", "latency_p50_ms"), False)
    for path, label in (("/studies?expand", "GET /studies?expand"), ("/series?expand", "GET /series?expand"),
                        ("/patients?expand", "GET /patients?expand"), ("/instances", "GET /instances (IDs)")):
        target = LATENCY_TARGET if path in ("/studies?expand", "/series?expand") else None
        add(f"{label} p50", "ms", ("lists", path, "p50_ms"), False, target)
        add(f"{label} p95", "ms", ("lists", path, "p95_ms"), False, target)
    add("GET /studies/{id} p50", "ms", ("single", "studies", "p50_ms"), False)
    add("GET /instances/{id} p50", "ms", ("single", "instances", "p50_ms"), False)
    add("/changes walk, limit=1000", "s", ("changes", "seconds"), False, None,
        "total time; pages differ if a server caps the limit")
    add("/changes pages walked", "pages", ("changes", "pages"), False)
    for pct in ("25", "50", "75", "100"):
        add(f"server RSS at {pct}% of the store", "MiB", ("rss_mib", pct), False)
    for name in ("orthanc_lite", "orthanc"):
        growth = _get(results, name, "rss_growth")
        if growth is not None:
            flat = "flat" if growth <= FLAT_MEMORY_GROWTH else "GROWS"
            # orthanc_lite's SQLite connections cache up to 32 MB of pages each (index/engine.py cache_size): RSS
            # rises with the index file until ~26,000 instances, then stays flat (118 MiB from 25,000 to 60,000).
            why = "; SQLite page cache fills up to ~26k instances" if name == "orthanc_lite" else ""
            out.append(Row(f"RSS growth 25%->100% ({name})", "x", growth if name == "orthanc_lite" else None,
                           growth if name == "orthanc" else None, False, None,
                           f"{flat} (target <= {FLAT_MEMORY_GROWTH}x){why}"))
    out.extend(section_rows(results.get("sections", {})))
    return out


def section_rows(sections: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for section, result in sections.items():
        if not isinstance(result, dict):
            continue
        for figure, entry in result.items():
            if not isinstance(entry, dict) or "lite" not in entry:
                continue
            lite, orthanc = entry.get("lite"), entry.get("orthanc")
            for key, unit, higher in (("p50_ms", "ms", False), ("instances_per_s", "inst/s", True),
                                      ("per_s", "/s", True)):
                if isinstance(lite, dict) and key in lite:
                    theirs = orthanc.get(key) if isinstance(orthanc, dict) else None
                    out.append(Row(f"[{section}] {figure} {key.split('_')[0]}", unit, lite[key], theirs, higher))
                    break
    return out


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(table_rows: list[Row]) -> str:
    header = ("figure", "unit", "orthanc_lite", "Orthanc", "lite/Orthanc", "target")
    lines = [header]
    for r in table_rows:
        verdict = r.verdict or r.note
        lines.append((r.figure, r.unit, _fmt(r.lite), _fmt(r.orthanc),
                      "-" if r.ratio is None else f"{r.ratio:.2f}x", verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = []
    for n, line in enumerate(lines):
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        cells += [line[i].rjust(widths[i]) for i in (2, 3, 4)]
        cells.append(line[5])
        text.append("  ".join(cells).rstrip())
        if n == 0:
            text.append("  ".join("-" * w for w in widths))
    return "\n".join(text)


RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"


def write_results(results: dict[str, Any], json_path: str | None, quick: bool, suffix: str = "") -> pathlib.Path:
    """Write the results to `json_path`, or to bench/results/<timestamp>[-quick]<suffix>.json; return the path."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = pathlib.Path(json_path) if json_path else RESULTS_DIR / f"{stamp}{'-quick' if quick else ''}{suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults written to {path}")
    return path
