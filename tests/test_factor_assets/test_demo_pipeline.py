"""The whole graph end to end, exactly as `make demo` runs it, on a small window."""

import hashlib
import os
import subprocess

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance

from tests.test_factor_assets.cli_runner import REPO

pytestmark = pytest.mark.slow

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
DAYS = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]


def _make_demo(env: dict[str, str]) -> str:
    result = subprocess.run(
        ["make", "--no-print-directory", "demo"], cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return result.stdout


def readme_cli_commands() -> list[str]:
    """The shell commands of the README's "Command line" block, continuation lines joined."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("## Command line", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands, current = [], ""
    for line in block.splitlines():
        line = line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            commands.append(current.strip())
            current = ""
    return commands


def _digests(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("part-0.parquet"))
    }


def test_make_demo_materializes_the_graph_through_dagster_and_is_idempotent(dagster_home, data_root):
    env = {
        "DAGSTER_HOME": str(dagster_home),
        "FACTOR_DATA_ROOT": str(data_root),
        "DEMO_SYMBOLS": ",".join(SYMBOLS),
        "DEMO_START": DAYS[0],
        "DEMO_DAYS": str(len(DAYS)),
        "SIM_TRADES_PER_MINUTE": "3",
    }
    first = _make_demo(env)
    assert "backtest summary" in first
    table = first.split("backtest summary", 1)[1]
    assert "Sharpe" in table and "max DD" in table
    assert any(line.startswith("momentum *") and "2024-01-04" in line for line in table.splitlines())  # short sample

    for asset in ("raw_klines", "raw_trades", "raw_book", "raw_funding", "raw_quotes", "factor_bars"):
        files = sorted(p.parent.parent.name + "/" + p.parent.name for p in (data_root / asset).rglob("part-0.parquet"))
        assert files == sorted(f"symbol={s}/date={d}" for s in SYMBOLS for d in DAYS), asset

    with duckdb.connect(str(data_root / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT symbol) FROM factor_panel").fetchone() == (96 * 3, 3)
        # One row per (strategy, day); day 1 is the 24-hour momentum's warm-up, so momentum starts on day 2.
        rows, keys = con.execute("SELECT count(*), count(DISTINCT (strategy, date)) FROM backtest_daily").fetchone()
        assert rows == keys > 0
        first_day = con.execute("SELECT min(date) FROM backtest_daily WHERE strategy = 'momentum'").fetchone()[0]
        assert str(first_day) == "2024-01-02"
        traded = con.execute("SELECT count(*) FROM backtest_daily WHERE date = '2024-01-04' AND turnover > 0").fetchone()[0]
        assert traded > 0
        assert con.execute("SELECT count(*) FROM raw_klines").fetchone() == (1440 * 12,)  # view over Parquet
        summary_before = con.execute("SELECT * FROM backtest_summary ORDER BY strategy").fetchall()
        assert {row[0] for row in summary_before} >= {"momentum", "low_volatility"}

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 5  # universe, news, per-symbol layers, daily layers, summaries: never one per partition
        assert all(r.is_success for r in runs)
        keys = instance.get_materialized_partitions(AssetKey("factor_bars"))
        assert len(keys) == len(SYMBOLS) * len(DAYS)

    digests = _digests(data_root)
    second = _make_demo(env)
    assert _digests(data_root) == digests  # same bytes: deterministic, replaced not appended
    with duckdb.connect(str(data_root / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM backtest_daily").fetchone() == (rows,)
        assert con.execute("SELECT * FROM backtest_summary ORDER BY strategy").fetchall() == summary_before
    assert second.split("backtest summary")[1] == first.split("backtest summary")[1]

    # The README's CLI examples, verbatim, against what the demo built (the
    # README's own `export` line points at the repository's folders instead).
    commands = readme_cli_commands()
    assert any("--partition-range" in c for c in commands) and any("--partition \"" in c for c in commands)
    for command in commands:
        if command.startswith("export "):
            continue
        result = subprocess.run(
            ["bash", "-c", command], cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, f"README command failed: {command}\n{(result.stdout + result.stderr)[-3000:]}"
