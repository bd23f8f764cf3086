"""Simulator speed: CPU ms per symbol-day, optionally against the simulator of another git revision.

Run:  .venv/bin/python bench/bench_simulator.py [--days D] [--repeat R] [--baseline REV]

Simulates the 5 demo symbols over ``D`` days (default 6; the first day warms the per-symbol
horizons and the Numba cache and is not timed) ``R`` times (default 7). With ``--baseline``,
the simulator of git revision ``REV`` (a single ``factor_core/simulator.py`` or the
``factor_core/simulator/`` package) is loaded beside the working tree's under another module
name and the two are timed **interleaved** (alternating order each repeat), so drifting load
hits both alike; the ratio of best CPU times is printed. The per-day path caches are cleared
between repeats so every repeat computes the same work.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")


def load_baseline(rev: str):
    """The simulator of ``rev`` as module ``sim_baseline`` (its own imports redirected)."""
    tmp = Path(tempfile.mkdtemp(prefix="sim_baseline_"))
    listing = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", rev, "factor_core/"],
                             check=True, capture_output=True, text=True).stdout.split()
    files = [f for f in listing if f == "factor_core/simulator.py" or f.startswith("factor_core/simulator/")]
    if not files:
        raise SystemExit(f"no simulator in {rev}")
    for f in files:
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{f}"], check=True, capture_output=True,
                              text=True).stdout.replace("factor_core.simulator", "sim_baseline")
        dest = tmp / f.replace("factor_core/simulator", "sim_baseline")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
    sys.path.insert(0, str(tmp))
    return importlib.import_module("sim_baseline")


def _clear(mod) -> None:
    for name in ("_log_path", "_market_intraday"):
        fn = getattr(mod, name, None) or getattr(getattr(mod, "path", None), name, None)
        if fn is not None:
            fn.cache_clear()


def run(mod, days) -> float:
    """CPU ms per symbol-day over ``days``."""
    t0 = time.process_time()
    for day in days:
        for symbol in SYMBOLS:
            mod.simulate_day(symbol, day, mod.SimulatorConfig())
    return (time.process_time() - t0) / (len(days) * len(SYMBOLS)) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--baseline", help="git revision whose simulator is the baseline")
    args = ap.parse_args()
    from factor_core import simulator as current

    cases = {"working tree": current}
    if args.baseline:
        cases = {f"baseline {args.baseline}": load_baseline(args.baseline), **cases}
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(args.days)]
    for mod in cases.values():
        run(mod, days[:1])  # horizons, JIT / cache load
    times: dict[str, list[float]] = {name: [] for name in cases}
    for rep in range(args.repeat):
        order = list(cases.items()) if rep % 2 == 0 else list(cases.items())[::-1]
        for name, mod in order:
            _clear(mod)
            times[name].append(run(mod, days[1:]))
    for name, values in times.items():
        values.sort()
        print(f"{name}: {values[0]:.1f} ms per symbol-day CPU (best of {args.repeat}), median {values[len(values) // 2]:.1f}")
    if args.baseline:
        (b, bv), (c, cv) = times.items()
        print(f"ratio working tree / baseline (best): {cv[0] / bv[0]:.2f}x, (median): {cv[len(cv) // 2] / bv[len(bv) // 2]:.2f}x")


if __name__ == "__main__":
    main()
