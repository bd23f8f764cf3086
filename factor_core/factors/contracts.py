"""How the registry calls each kernel: the names of its outputs and its look-back as a function of its parameters.

A kernel's *reach* is what the value at bar ``t`` reads beyond its inputs'
own reach: ``lookback_bars`` (it reads the inputs at ``t - lookback_bars .. t``)
and, for recursive stages (EMA, Wilder), the smoothing constants ``alpha``
whose seed influence ``(1 - alpha) ** bars`` must decay below
``DECAY_TOLERANCE`` before a value stops depending on where the input began.
Window kernels over ``n`` bars reach ``n - 1`` bars back; a shift by ``n`` bars
reaches ``n``; a TA-Lib-style recursion seeded with the mean of its first ``n``
values (or changes) reaches its seed span, plus the decay.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from factor_core import kernels as K

#: EMA / Wilder states count as converged once a seed difference has decayed below this factor.
DECAY_TOLERANCE = 1e-7


def ema_alpha(n: int) -> float:
    """Smoothing constant of an ``n``-bar EMA (``talib.EMA``): ``2 / (n + 1)``."""
    return 2.0 / (n + 1.0)


def wilder_alpha(n: int) -> float:
    """Smoothing constant of Wilder's ``n``-bar average (``talib.RSI`` / ``talib.ATR``): ``1 / n``."""
    return 1.0 / n


def decay_bars(alpha: float, tol: float = DECAY_TOLERANCE) -> int:
    """Bars after which ``(1 - alpha) ** bars < tol``: a seed's influence on an EMA/Wilder state."""
    return int(math.floor(math.log(tol) / math.log1p(-alpha))) + 1


@dataclass(frozen=True)
class Reach:
    """What a kernel's value at bar ``t`` reads beyond its inputs: bars ``t - lookback_bars .. t``,
    through recursive stages with smoothing constants ``decay_alphas`` (in cascade)."""

    lookback_bars: int
    decay_alphas: tuple[float, ...] = ()

    @property
    def decay_bars(self) -> int:
        return sum(decay_bars(a) for a in self.decay_alphas)


@dataclass(frozen=True)
class KernelContract:
    """``reach(**params)`` gives a ``Reach``, or one per output name for kernels returning a tuple.

    ``outputs`` names the returned arrays in order (``("value",)``: a single
    array). ``cumulative`` kernels depend on where the input starts however
    long the history (OBV): their factors are not start-invariant.
    """

    reach: Callable[..., Reach | Mapping[str, Reach]]
    outputs: tuple[str, ...] = ("value",)
    cumulative: bool = False

    def reach_of(self, output: str, params: Mapping[str, object]) -> Reach:
        r = self.reach(**params)
        return r[output] if isinstance(r, Mapping) else r


def _macd_reach(fast: int, slow: int, signal: int) -> dict[str, Reach]:
    line = Reach(slow - 1, (ema_alpha(slow),))  # both EMAs start at once; the slow one converges last
    sig = Reach(slow + signal - 2, (ema_alpha(slow), ema_alpha(signal)))
    return {"line": line, "signal": sig, "hist": sig}


CONTRACTS: dict[Callable, KernelContract] = {
    K.log_return: KernelContract(lambda n: Reach(n)),
    K.simple_return: KernelContract(lambda n: Reach(n)),
    K.weighted_sum3: KernelContract(lambda wa, wb, wc: Reach(0)),
    K.volume_momentum: KernelContract(lambda n: Reach(2 * n - 1)),
    K.realized_vol: KernelContract(lambda n: Reach(n - 1)),
    K.rolling_std: KernelContract(lambda n, ddof: Reach(n - 1)),
    K.rolling_ratio: KernelContract(lambda n: Reach(n - 1)),
    K.safe_ratio: KernelContract(lambda: Reach(0)),
    K.atr_wilder: KernelContract(lambda n: Reach(n, (wilder_alpha(n),))),
    K.rsi_wilder: KernelContract(lambda n: Reach(n, (wilder_alpha(n),))),
    K.bollinger: KernelContract(lambda n, k: Reach(n - 1), outputs=("mid", "upper", "lower", "position", "width")),
    K.macd: KernelContract(_macd_reach, outputs=("line", "signal", "hist")),
    K.obv_talib: KernelContract(lambda: Reach(0), cumulative=True),
    K.obv_window: KernelContract(lambda n: Reach(n)),
    K.amihud: KernelContract(lambda n, scale: Reach(n - 1)),
    K.turnover_ratio: KernelContract(lambda short, long: Reach(max(short, long) - 1)),
    K.spread_cs: KernelContract(lambda n, scale: Reach(n)),  # each Corwin-Schultz pair reads the bar before
    K.price_impact: KernelContract(lambda n, min_count: Reach(n - 1)),
    K.order_flow_imbalance: KernelContract(lambda n: Reach(n - 1)),
    # joins of non-bar inputs: they read events / minutes / daily rows, no earlier bars
    K.asof_values: KernelContract(lambda strict: Reach(0)),
    K.bin_nanmean: KernelContract(lambda: Reach(0)),
    K.lagged_day_values: KernelContract(lambda lag_days: Reach(0)),
}
