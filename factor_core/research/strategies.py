"""Strategies as configuration: the spec, the YAML loader and the score a spec defines.

A strategy is plain data (``StrategySpec``: str / int / float / bool / list /
dict fields only), so the Dagster layer can mirror it 1:1 as a ``Config`` and
a run can override any field from the launchpad. ``strategies.yaml`` at the
repository root holds the defaults; ``load_strategies`` reads it and names the
file, the strategy and the field of anything wrong.

Score (docs/research.md, "Scores"): for each factor ``f`` with weight ``w_f``
the panel's cross-sectional normalisation of ``f`` at that hour, ``z_f``
(z-score) or ``rank_f`` (rank in [0, 1]), enters inverted when lower is better
(``-z_f`` or ``1 - rank_f``); the score is the weighted mean over the factors
a symbol has at that hour, ``sum(w_f * s_f) / sum(w_f)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from factor_core.research.catalog import PANEL_FACTORS, is_planted

NORMALIZATIONS = ("rank", "zscore")
SIDES = ("long_short", "long_only")
#: The daily tables carry q1_return .. q{MAX_QUANTILES}_return (NaN beyond a strategy's count).
MAX_QUANTILES = 10
RANK_PREFIX = "rank_"
Z_PREFIX = "z_"


class StrategyConfigError(ValueError):
    """A strategy definition that cannot be used; the message names file, strategy and field."""


@dataclass(frozen=True)
class StrategySpec:
    """One named strategy. Every field is a plain type (mirrored as a Dagster ``Config``).

    * ``factors``: factor name -> weight (> 0). One entry = a single-factor strategy.
    * ``lower_is_better``: factors that enter the score inverted (e.g. volatility).
    * ``normalization``: ``"rank"`` (cross-sectional rank in [0, 1]) or ``"zscore"``.
    * ``rebalance_every_hours``: a new portfolio is formed at every UTC hour ``T`` with
      ``hours since 1970-01-01 00:00 % N == 0`` (so N = 4 trades at 00:00, 04:00, ...).
    * ``holding_hours``: each portfolio is held that long; a positive multiple of N.
      ``holding_hours / N`` overlapping tranches share the capital equally.
    * ``n_quantiles``: cross-sectional quantiles of the score (2 .. MAX_QUANTILES).
    * ``side``: ``"long_short"`` (long the top quantile, short the bottom one, 1 unit each)
      or ``"long_only"`` (long the top quantile, 1 unit).
    * ``fee_bps``: fee per unit of notional traded, in basis points.
    * ``charge_spread``: charge half the quoted spread (``liq_quoted_spread_bps``) on every unit traded.
    * ``charge_funding``: credit/debit perpetual funding at each settlement (longs pay positive rates).
    """

    name: str
    factors: dict[str, float]
    lower_is_better: list[str] = field(default_factory=list)
    normalization: str = "rank"
    rebalance_every_hours: int = 1
    holding_hours: int = 1
    n_quantiles: int = 5
    side: str = "long_short"
    fee_bps: float = 5.0
    charge_spread: bool = True
    charge_funding: bool = True

    def __post_init__(self) -> None:
        def bad(field_name: str, value: object, what: str) -> StrategyConfigError:
            return StrategyConfigError(f"strategy {self.name!r}: field {field_name!r} = {value!r}: {what}")

        if not isinstance(self.name, str) or not self.name.strip():
            raise StrategyConfigError(f"strategy name {self.name!r}: must be a non-empty string")
        if not isinstance(self.factors, Mapping) or not self.factors:
            raise bad("factors", self.factors, "give a mapping factor -> weight with at least one factor")
        for factor, weight in self.factors.items():
            if not isinstance(weight, int | float) or isinstance(weight, bool) or not math.isfinite(weight) or weight <= 0:
                raise bad("factors", {factor: weight}, "weights must be finite numbers > 0 "
                          "(invert a factor with lower_is_better, not with a negative weight)")
        if isinstance(self.lower_is_better, str) or not isinstance(self.lower_is_better, Iterable):
            raise bad("lower_is_better", self.lower_is_better, "give a list of factor names")
        stray = [f for f in self.lower_is_better if f not in self.factors]
        if stray:
            raise bad("lower_is_better", list(self.lower_is_better), f"{stray} are not among the factors")
        if self.normalization not in NORMALIZATIONS:
            raise bad("normalization", self.normalization, f"must be one of {NORMALIZATIONS}")
        if self.side not in SIDES:
            raise bad("side", self.side, f"must be one of {SIDES}")
        for name in ("rebalance_every_hours", "holding_hours", "n_quantiles"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(name, value, "must be a positive integer")
        if self.holding_hours % self.rebalance_every_hours:
            raise bad("holding_hours", self.holding_hours,
                      f"must be a multiple of rebalance_every_hours ({self.rebalance_every_hours})")
        if not 2 <= self.n_quantiles <= MAX_QUANTILES:
            raise bad("n_quantiles", self.n_quantiles, f"must lie in [2, {MAX_QUANTILES}]")
        fee = self.fee_bps
        if not isinstance(fee, int | float) or isinstance(fee, bool) or not math.isfinite(fee) or fee < 0:
            raise bad("fee_bps", fee, "must be a finite number >= 0")
        for name in ("charge_spread", "charge_funding"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, getattr(self, name), "must be true or false")
        object.__setattr__(self, "factors", {str(k): float(v) for k, v in self.factors.items()})
        object.__setattr__(self, "lower_is_better", [str(f) for f in self.lower_is_better])
        object.__setattr__(self, "fee_bps", float(fee))

    @property
    def tranches(self) -> int:
        """Overlapping portfolios alive at any time (holding / rebalance)."""
        return self.holding_hours // self.rebalance_every_hours

    @property
    def lookback_hours(self) -> int:
        """Panel hours before a bar that its positions and turnover read (see docs/research.md)."""
        return self.holding_hours + 1

    @property
    def uses_planted_factor(self) -> bool:
        return any(is_planted(f) for f in self.factors)

    def normalized_column(self, factor: str) -> str:
        return (RANK_PREFIX if self.normalization == "rank" else Z_PREFIX) + factor

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_mapping(cls, data: Mapping) -> StrategySpec:
        """Build from a plain mapping (a YAML entry or a Dagster Config's dict), rejecting unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        name = data.get("name") if isinstance(data, Mapping) else None
        if not isinstance(data, Mapping):
            raise StrategyConfigError(f"a strategy must be a mapping of fields, got {type(data).__name__}")
        unknown = sorted(set(data) - known)
        if unknown:
            raise StrategyConfigError(f"strategy {name!r}: unknown field(s) {unknown}; known fields: {sorted(known)}")
        missing = [k for k in ("name", "factors") if k not in data]
        if missing:
            raise StrategyConfigError(f"strategy {name!r}: missing required field(s) {missing}")
        return cls(**dict(data))


def validate_factor_names(spec: StrategySpec, known: Iterable[str] = PANEL_FACTORS) -> None:
    """Raise if ``spec`` names a factor the panel can never carry (a typo, not a missing layer)."""
    known = set(known)
    unknown = [f for f in spec.factors if f not in known]
    if unknown:
        raise StrategyConfigError(
            f"strategy {spec.name!r}: field 'factors' names unknown factor(s) {unknown}; "
            f"see docs/factors.md for the registry (extra panel factors: sentiment_score, planted_signal)"
        )


def parse_strategies(entries: object, where: str) -> list[StrategySpec]:
    """StrategySpecs from a list of mappings (a file's ``strategies:`` list or a run's config).

    ``where`` names the origin in every error (a file path, or "run config"), with the
    strategy (by position and name) and the field. Names must be unique; every factor
    must be one the panel can carry.
    """
    if not isinstance(entries, list) or not entries:
        raise StrategyConfigError(f"{where}: expected a non-empty list of strategy mappings, got {entries!r}")
    specs: list[StrategySpec] = []
    for position, entry in enumerate(entries, start=1):
        label = entry.get("name") if isinstance(entry, Mapping) else None
        try:
            spec = StrategySpec.from_mapping(entry)
            validate_factor_names(spec)
        except (StrategyConfigError, TypeError) as exc:
            raise StrategyConfigError(f"{where}: strategy #{position} ({label!r}): {exc}") from None
        specs.append(spec)
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StrategyConfigError(f"{where}: strategy name(s) {duplicates} defined more than once")
    return specs


def load_strategies(path: str | Path) -> list[StrategySpec]:
    """Read ``strategies.yaml``: a top-level ``strategies:`` list of StrategySpec mappings.

    Errors name the file, the strategy (by name or position) and the field
    (see ``parse_strategies``).
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StrategyConfigError(f"{path}: strategies file not found; point the config at a strategies.yaml") from None
    except yaml.YAMLError as exc:
        raise StrategyConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(document, Mapping) or not isinstance(document.get("strategies"), list):
        raise StrategyConfigError(f"{path}: expected a top-level 'strategies:' list of strategy mappings")
    return parse_strategies(document["strategies"], str(path))


def strategy_fingerprint(spec: StrategySpec) -> str:
    """A short digest of every field of ``spec``: tells rows computed under another definition of the same name."""
    canonical = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def skip_reason(spec: StrategySpec, panel_columns: Iterable[str]) -> str | None:
    """Why ``spec`` cannot run on a panel with these columns (None if it can)."""
    columns = set(panel_columns)
    absent = [f for f in spec.factors if spec.normalized_column(f) not in columns]
    if not absent:
        return None
    return (
        f"strategy {spec.name!r} skipped: factor(s) {absent} are not in the panel "
        "(their layer has not produced them for these days, or the source does not provide them)"
    )


def strategy_scores(panel: pd.DataFrame, spec: StrategySpec) -> np.ndarray:
    """The spec's score for every panel row (NaN where the symbol has none of the factors).

    ``sum(w_f * s_f) / sum(w_f)`` over the factors present on the row, with
    ``s_f`` the normalised factor, inverted (``1 - rank`` or ``-z``) when lower is better.
    """
    reason = skip_reason(spec, panel.columns)
    if reason:
        raise KeyError(reason)
    weighted = np.zeros(len(panel))
    weight_present = np.zeros(len(panel))
    for factor, weight in spec.factors.items():
        values = panel[spec.normalized_column(factor)].to_numpy(dtype="float64", na_value=np.nan)
        if factor in spec.lower_is_better:
            values = 1.0 - values if spec.normalization == "rank" else -values
        present = np.isfinite(values)
        weighted += np.where(present, values, 0.0) * weight
        weight_present += present * weight
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight_present > 0, weighted / np.where(weight_present > 0, weight_present, 1.0), np.nan)
