"""Which panel columns are factors, where each comes from, and which are planted.

The research layer evaluates every start-invariant factor of the registry
(``factor_core.factors.FACTORS``; the cumulative ``obv`` is left out because
its day-by-day value depends on where the input began) plus the extra hourly
columns other layers add to the panel:

* ``sentiment_score`` (the LLM sentiment layer, joined as-of to each hour);
* ``planted_signal``: the simulator's hidden signal, present only with the
  synthetic source. It is *declared as planted* so every report marks it: it
  proves the machinery can find a known signal; it is not an alpha.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from factor_core.factors import FACTORS


@dataclass(frozen=True)
class PanelFactor:
    name: str
    group: str
    description: str = ""
    #: True for a factor that only exists because the simulator planted it.
    planted: bool = False


SENTIMENT_FACTOR = "sentiment_score"
PLANTED_FACTOR = "planted_signal"

EXTRA_FACTORS: tuple[PanelFactor, ...] = (
    PanelFactor(
        SENTIMENT_FACTOR,
        "sentiment",
        "LLM sentiment in [-1, 1] of the news published before the bar's close (sentiment layer)",
    ),
    PanelFactor(
        PLANTED_FACTOR,
        "planted",
        "the simulator's planted signal published at the bar's close_time T; it drives the "
        "idiosyncratic return over [T, T+1h) (synthetic source only)",
        planted=True,
    ),
)

REGISTRY_FACTORS: tuple[PanelFactor, ...] = tuple(
    PanelFactor(spec.name, spec.group, spec.description) for spec in FACTORS if spec.start_invariant
)

#: Every factor the panel may carry, in panel column order.
PANEL_FACTORS: dict[str, PanelFactor] = {f.name: f for f in (*REGISTRY_FACTORS, *EXTRA_FACTORS)}


def factors_in(columns: Iterable[str]) -> list[str]:
    """The known factors present among ``columns``, in catalog order."""
    present = set(columns)
    return [name for name in PANEL_FACTORS if name in present]


def is_planted(name: str) -> bool:
    factor = PANEL_FACTORS.get(name)
    return bool(factor and factor.planted)


def factor_group(name: str) -> str:
    factor = PANEL_FACTORS.get(name)
    return factor.group if factor else ""
