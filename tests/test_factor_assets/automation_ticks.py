"""Ticks of the code location's own automation conditions against one instance, for the automation tests.

Materializations are reported to the instance directly (what a finished run
records) and the conditions are evaluated with ``evaluate_automation_conditions``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from dagster import AssetKey, AssetMaterialization, evaluate_automation_conditions

from factor_assets.definitions import defs

NOW = dt.datetime(2024, 2, 1, 3, 0, tzinfo=dt.UTC)  # the last complete day is 2024-01-31


def january(first: int, last: int) -> list[str]:
    return [f"2024-01-{d:02d}" for d in range(first, last + 1)]


def mark(instance, asset: str, keys: Iterable[str | None], metadata=None) -> None:
    """Report ``asset`` materialized at each partition key (``None``: unpartitioned)."""
    for key in keys:
        instance.report_runless_asset_event(AssetMaterialization(asset_key=asset, partition=key, metadata=metadata))


class AutomationTicks:
    """Ticks over ``assets``; an unpartitioned asset's request reads as ``[None]``."""

    def __init__(self, instance, assets: Sequence[str], *, unpartitioned: Sequence[str] = (), now: dt.datetime = NOW):
        self.instance, self.assets, self.unpartitioned = instance, list(assets), set(unpartitioned)
        self.now, self.cursor = now, None
        self.tick()  # the first evaluation requests nothing, by design

    def tick(self) -> dict[str, list]:
        result = evaluate_automation_conditions(defs=defs, instance=self.instance, evaluation_time=self.now,
                                                cursor=self.cursor)
        self.cursor = result.cursor
        requested = {}
        for name in self.assets:
            if result.get_num_requested(AssetKey(name)):
                requested[name] = ([None] if name in self.unpartitioned
                                   else sorted(result.get_requested_partitions(AssetKey(name))))
        return requested

    def run(self, max_ticks: int = 8) -> list[dict[str, list]]:
        """Ticks, each followed by its requested partitions being materialized, until a tick requests nothing."""
        ticks = []
        for _ in range(max_ticks):
            requested = self.tick()
            if not requested:
                return ticks
            ticks.append(requested)
            for name, keys in requested.items():
                mark(self.instance, name, keys)
        raise AssertionError(f"automation did not settle: {ticks}")

    def settle(self, max_ticks: int = 8) -> dict[str, list]:
        """Every partition requested until nothing more is, merged per asset."""
        merged: dict[str, set] = {}
        for tick in self.run(max_ticks):
            for asset, keys in tick.items():
                merged.setdefault(asset, set()).update(keys)
        return {asset: sorted(keys) for asset, keys in merged.items()}

    def later(self, minutes: int = 1) -> None:
        self.now += dt.timedelta(minutes=minutes)  # new symbols are seen at a new evaluation time
