"""A factor as declared in the table (``Factor``) and as resolved by the registry (``FactorSpec``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Factor:
    """One row of the factor table: the column ``name`` is ``kernel(**inputs, **params)[output]``.

    ``inputs`` maps each array argument of the kernel to the column it reads:
    a bar column (``BAR_COLUMNS``, ``ts_ns``, ``close_time_ns``, ``n_bars``), a
    factor declared earlier in the table, or a column of an optional input
    (``funding.*``, ``liquidity.*``, ``liquidity_daily.*``). ``params`` are the
    kernel's scalar arguments; ``output`` names one of the arrays the kernel
    returns (see ``contracts.CONTRACTS``). Look-back, warm-up and start
    invariance are derived by the registry, never typed here.
    """

    name: str
    kernel: Callable
    inputs: Mapping[str, str]
    params: Mapping[str, object] = field(default_factory=dict)
    output: str = "value"
    group: str = ""
    unit: str = ""
    description: str = ""
    reference: str = ""


@dataclass(frozen=True)
class FactorSpec:
    """A resolved output column of ``compute_factor_bars``.

    ``inputs`` are the columns in the kernel's argument order
    (``input_args[i]`` reads ``inputs[i]``); ``output_index`` is the position
    of ``output`` in the kernel's returned tuple (None for a single array).
    ``lookback_bars``: the value at bar ``t`` reads bars ``t - lookback_bars .. t``
    (through the factors it is built on). ``decay_bars``: bars its recursive
    (EMA/Wilder) stages need until a seed's influence is below
    ``DECAY_TOLERANCE``. ``warmup_bars = lookback_bars + decay_bars``: history
    after which the value no longer depends on where the input started, unless
    ``start_invariant`` is False (cumulative factors such as ``obv``).
    """

    name: str
    kernel: Callable
    input_args: tuple[str, ...]
    inputs: tuple[str, ...]
    params: Mapping[str, object]
    output: str
    output_index: int | None
    lookback_bars: int
    decay_alphas: tuple[float, ...]
    decay_bars: int
    start_invariant: bool
    group: str
    unit: str
    description: str
    reference: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def warmup_bars(self) -> int:
        """Bars of history after which the value no longer depends on where the input started."""
        return self.lookback_bars + self.decay_bars

    @property
    def kernel_name(self) -> str:
        return getattr(self.kernel, "__name__", repr(self.kernel))

    @property
    def call_key(self) -> tuple:
        """Identical calls (same kernel, inputs and parameters) are computed once."""
        return (self.kernel, self.inputs, tuple(sorted(self.params.items())))
