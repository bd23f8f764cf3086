"""The registry: ``FACTOR_TABLE`` resolved and checked at import; look-backs and ``WARMUP_DAYS`` derived from it.

``build_registry`` refuses, with the factor and the column named, a table in
which an input column is unknown (not a bar column, not an earlier factor,
not produced by ``factor_core.liquidity`` or the funding schema), a kernel
argument is missing or unknown, or an output name is not one the kernel returns.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping

from factor_core import liquidity as L
from factor_core.factors.contracts import CONTRACTS
from factor_core.factors.inputs import (
    BAR_COLUMN_LOOKBACK,
    BAR_COLUMNS,
    BARS_PER_DAY,
    DERIVED_INPUTS,
    FUNDING,
    FUNDING_COLUMNS,
    LIQUIDITY,
    LIQUIDITY_BAR_INDEX,
    LIQUIDITY_DAILY,
    LIQUIDITY_DAILY_TS,
)
from factor_core.factors.spec import Factor, FactorSpec
from factor_core.factors.table import FACTOR_TABLE


class RegistryError(ValueError):
    """The factor table is inconsistent (raised at import of ``factor_core.factors``)."""


#: Where the columns of each optional input are defined: a registry input outside them fails the import.
_OPTIONAL_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    FUNDING: ("schemas.FUNDING", FUNDING_COLUMNS),
    LIQUIDITY: ("factor_core.liquidity.MINUTE_COLUMNS", tuple(c for c in L.MINUTE_COLUMNS if c != "ts")),
    LIQUIDITY_DAILY: ("factor_core.liquidity.DAILY_KEYS", L.DAILY_KEYS),
}


def _optional_input_columns() -> set[str]:
    return {f"{ns}.{c}" for ns, (_, cols) in _OPTIONAL_SOURCES.items() for c in cols}


def _kernel_arguments(kernel) -> inspect.Signature:
    return inspect.signature(getattr(kernel, "py_func", kernel))


def _resolve(decl: Factor, done: Mapping[str, FactorSpec], optional: set[str]) -> FactorSpec:
    where = f"factor {decl.name!r}"
    contract = CONTRACTS.get(decl.kernel)
    kernel_name = getattr(decl.kernel, "__name__", repr(decl.kernel))
    if contract is None:
        raise RegistryError(f"{where}: kernel {kernel_name} has no entry in factor_core/factors/contracts.py")
    sig = _kernel_arguments(decl.kernel)
    unknown = [a for a in (*decl.inputs, *decl.params) if a not in sig.parameters]
    both = set(decl.inputs) & set(decl.params)
    missing = [a for a, p in sig.parameters.items()
               if a not in decl.inputs and a not in decl.params and p.default is inspect.Parameter.empty]
    if unknown or both or missing:
        raise RegistryError(f"{where}: kernel {kernel_name}{sig} called with inputs {dict(decl.inputs)} and "
                            f"params {dict(decl.params)}: unknown {unknown}, both input and param {sorted(both)}, "
                            f"missing {missing}")
    for arg, col in decl.inputs.items():
        if col in done or col in BAR_COLUMNS[2:] or col in DERIVED_INPUTS or col in optional:
            continue
        namespace, _, column = col.partition(".")
        if namespace in _OPTIONAL_SOURCES:
            source, columns = _OPTIONAL_SOURCES[namespace]
            raise RegistryError(f"{where}: unknown input column {col!r} (kernel argument {arg!r}): {source} has "
                                f"no column {column!r} (it has {list(columns)}); edit "
                                "factor_core/factors/liquidity_inputs.py or the factor table")
        raise RegistryError(f"{where}: unknown input column {col!r} (kernel argument {arg!r}): not a bar column "
                            f"{list(BAR_COLUMNS[2:])}, a derived input {list(DERIVED_INPUTS)} or a factor "
                            "declared earlier in the table")
    if decl.output not in contract.outputs:
        raise RegistryError(f"{where}: kernel {kernel_name} returns {contract.outputs}, not {decl.output!r}")
    try:
        reach = contract.reach_of(decl.output, decl.params)
    except TypeError as exc:
        raise RegistryError(f"{where}: the look-back rule of {kernel_name} does not take params "
                            f"{dict(decl.params)}: {exc}") from exc
    upstream = [done[c] for c in decl.inputs.values() if c in done]
    input_lookback = max([BAR_COLUMN_LOOKBACK.get(c, 0) for c in decl.inputs.values() if c not in done]
                         + [s.lookback_bars for s in upstream], default=0)
    args = tuple(a for a in sig.parameters if a in decl.inputs)
    return FactorSpec(
        name=decl.name, kernel=decl.kernel, input_args=args, inputs=tuple(decl.inputs[a] for a in args),
        params=decl.params, output=decl.output,
        output_index=None if len(contract.outputs) == 1 else contract.outputs.index(decl.output),
        lookback_bars=reach.lookback_bars + input_lookback, decay_alphas=reach.decay_alphas,
        decay_bars=reach.decay_bars + max((s.decay_bars for s in upstream), default=0),
        start_invariant=not contract.cumulative and all(s.start_invariant for s in upstream),
        group=decl.group, unit=decl.unit, description=decl.description, reference=decl.reference,
    )


def build_registry(table: Iterable[Factor]) -> tuple[FactorSpec, ...]:
    """Resolve and check a factor table (see the module docstring); rows may read earlier rows."""
    optional = _optional_input_columns()
    done: dict[str, FactorSpec] = {}
    for decl in table:
        if decl.name in done or decl.name in BAR_COLUMNS or decl.name in DERIVED_INPUTS or "." in decl.name:
            raise RegistryError(f"factor {decl.name!r}: the name is taken (duplicate, bar column or input name)")
        done[decl.name] = _resolve(decl, done, optional)
    return tuple(done.values())


FACTORS: tuple[FactorSpec, ...] = build_registry(FACTOR_TABLE)
FACTOR_NAMES: tuple[str, ...] = tuple(s.name for s in FACTORS)

#: Bars of history after which every start-invariant factor is independent of where the input began.
WARMUP_BARS: int = max(s.warmup_bars for s in FACTORS if s.start_invariant)
WARMUP_DAYS: int = math.ceil(WARMUP_BARS / BARS_PER_DAY)


def optional_columns_read(specs: Iterable[FactorSpec], namespace: str) -> dict[str, str]:
    """``<namespace>.<column>`` inputs of ``specs`` -> the first factor reading each (keys in table order)."""
    out: dict[str, str] = {}
    for s in specs:
        for col in s.inputs:
            if col.startswith(namespace + ".") and col not in (LIQUIDITY_BAR_INDEX, LIQUIDITY_DAILY_TS):
                out.setdefault(col, s.name)
    return out
