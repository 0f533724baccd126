"""bench/floor.py's command line and table (the measurement itself is run by hand: python -m bench.floor)."""

from __future__ import annotations

from bench.floor import parse_args, rows, table


def test_sizes_default_and_quick() -> None:
    args = parse_args([])
    assert (args.instances, args.runs, args.json, args.serve) == (2000, 20, None, None)
    quick = parse_args(["--quick", "--json", "out.json"])
    assert (quick.instances, quick.runs, quick.json) == (400, 5, "out.json")


def test_table_with_the_floor_only() -> None:
    text = table(rows({"cstore": {"1": {"floor": {"instances_per_s": 700.0}}}, "parse": {"dcmread_ms": 0.2}}))
    assert "C-STORE, 1 association" in text and "700" in text and "OUT OF REACH" not in text
