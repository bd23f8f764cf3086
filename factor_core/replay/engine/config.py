"""Strategies as configuration: ``tick_strategies.yaml`` and what a run of them replays.

The file holds ``strategies:`` (a list of :class:`StrategySpec` mappings) and,
optionally, the replay they run on: ``book_levels`` (levels per side of the
book snapshots they receive, default 10) and ``equity_interval_s`` (how often
the equity curve is sampled, default 60). Anything wrong is reported with the
file, the strategy and the field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from factor_core.replay.engine.strategy import StrategyConfigError, StrategySpec, strategy_class

DEFAULT_FILE = Path(__file__).resolve().parents[3] / "tick_strategies.yaml"
_SPEC_FIELDS = {f.name for f in dataclasses.fields(StrategySpec)}


@dataclass(frozen=True)
class StrategyRunConfig:
    strategies: tuple[StrategySpec, ...]
    book_levels: int = 10
    equity_interval_s: int = 60

    @property
    def data_types(self) -> tuple[str, ...]:
        return ("trade", f"book_snapshot_{self.book_levels}_0ms")

    def __post_init__(self) -> None:
        if not self.strategies:
            raise StrategyConfigError("no strategies configured")
        names = [s.name for s in self.strategies]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise StrategyConfigError(f"strategy names must be unique; repeated: {duplicates}")
        if not (isinstance(self.book_levels, int) and 1 <= self.book_levels <= 1000):
            raise StrategyConfigError(f"book_levels must be an integer in 1..1000, got {self.book_levels!r}")
        if not (isinstance(self.equity_interval_s, int) and self.equity_interval_s > 0):
            raise StrategyConfigError(f"equity_interval_s must be a positive integer, got {self.equity_interval_s!r}")


def spec_from_mapping(raw: Mapping, *, where: str) -> StrategySpec:
    if not isinstance(raw, Mapping):
        raise StrategyConfigError(f"{where}: each strategy must be a mapping, got {raw!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise StrategyConfigError(f"{where}: every strategy needs a name")
    unknown = sorted(set(raw) - _SPEC_FIELDS)
    if unknown:
        raise StrategyConfigError(f"{where}: strategy {name!r}: unknown field(s) {unknown}; fields: {sorted(_SPEC_FIELDS)}")
    if "kind" not in raw:
        raise StrategyConfigError(f"{where}: strategy {name!r}: kind is required")
    symbols = raw.get("symbols") or ()
    if isinstance(symbols, str) or not all(isinstance(s, str) for s in symbols):
        raise StrategyConfigError(f"{where}: strategy {name!r}: symbols must be a list of symbols, got {symbols!r}")
    params = raw.get("params") or {}
    if not isinstance(params, Mapping):
        raise StrategyConfigError(f"{where}: strategy {name!r}: params must be a mapping, got {params!r}")
    try:
        spec = StrategySpec(**{**raw, "symbols": tuple(symbols), "params": dict(params)})
        spec.build()  # the kind exists and accepts the params
    except StrategyConfigError as exc:
        raise StrategyConfigError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise StrategyConfigError(f"{where}: strategy {name!r}: {exc}") from None
    strategy_class(spec.kind, strategy=spec.name)
    return spec


def load_strategy_config(path: str | Path = DEFAULT_FILE) -> StrategyRunConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise StrategyConfigError(f"{path}: strategies file not found") from None
    except yaml.YAMLError as exc:
        raise StrategyConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("strategies"), list):
        raise StrategyConfigError(f"{path}: expected a top-level 'strategies:' list")
    unknown = sorted(set(raw) - {"strategies", "book_levels", "equity_interval_s"})
    if unknown:
        raise StrategyConfigError(f"{path}: unknown top-level key(s) {unknown}")
    specs = tuple(spec_from_mapping(item, where=str(path)) for item in raw["strategies"])
    try:
        return StrategyRunConfig(specs, raw.get("book_levels", 10), raw.get("equity_interval_s", 60))
    except StrategyConfigError as exc:
        raise StrategyConfigError(f"{path}: {exc}") from None
