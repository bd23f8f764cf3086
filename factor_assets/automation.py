"""Declarative automation: a new or changed raw partition flows through every layer, and nothing else moves.

Every downstream asset carries :func:`keep_fresh`:

* **trigger**: a dependency partition was updated (or will be in this tick)
  since the partition was last requested or materialized; for an asset fed
  from outside the graph (the news), also a partition that newly appeared
  (a new day). A new symbol or day of a downstream asset is reached through
  its raw partitions' updates, so per-symbol assets do not watch for new
  partitions: Dagster would carry the missing state of every (day, symbol)
  (146 k keys at 200 symbols x 2 years) in the cursor of every tick. Through
  the look-back mappings, a late update of an old day also reaches the later
  days whose window reads it; nothing else is requested. No ``in_latest_time_window``:
  corrections of history propagate too;
* **ready**: the inputs of the partition's *own day* exist (or are requested
  in the same tick). Look-back days are not required, so history that was
  never materialized does not block the newest day forever; a cross-section
  waits only for the symbols listed that day (point-in-time membership from
  ``symbol_universe``), so a delisted symbol does not block later days;
* **quiet**: neither the partition nor any of its inputs is being computed.

Requests of one tick go out as one backfill (Dagster's ``emit_backfills``),
which honours the single-run backfill policy of every asset.

The two custom conditions need the sensor to evaluate in the code server
(``use_user_code_server=True``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    MultiPartitionsDefinition,
)
from dagster._core.definitions.declarative_automation.automation_condition import AutomationResult
from dagster._core.definitions.declarative_automation.automation_context import AutomationContext

from factor_core import settings
from factor_core.universe import Listings, is_listed
from partitions import SYMBOLS_PARTITION_NAME

UNIVERSE_ASSET = AssetKey("symbol_universe")
#: Metadata key of ``symbol_universe`` materializations holding ``{symbol: [listed_on, delisted_on]}``.
LISTINGS_METADATA_KEY = "listings"


def current_listings(instance) -> Listings:
    """The latest ``symbol_universe`` listings, or ``{}`` (every registered symbol always listed)."""
    event = instance.get_latest_materialization_event(UNIVERSE_ASSET)
    if event is None or event.asset_materialization is None:
        return {}
    value = event.asset_materialization.metadata.get(LISTINGS_METADATA_KEY)
    if value is None:
        return {}
    raw = value.value if hasattr(value, "value") else value
    data = json.loads(raw) if isinstance(raw, str) else raw
    return {symbol: (pair[0], pair[1]) for symbol, pair in data.items()}


def _split(key: str) -> tuple[str, str]:
    day, symbol = key.split("|")  # MultiPartitionKey: dimensions sorted by name (date, symbol)
    return day, symbol


class SymbolListed(AutomationCondition):
    """The partition's symbol was listed on the partition's day (per ``symbol_universe``)."""

    @property
    def name(self) -> str:
        return "symbol_listed_that_day"

    @property
    def description(self) -> str:
        return "the symbol was listed on this day (point-in-time universe)"

    def evaluate(self, context: AutomationContext) -> AutomationResult:
        candidates = context.candidate_subset
        if candidates.is_empty or not isinstance(context.partitions_def, MultiPartitionsDefinition):
            return AutomationResult(context, candidates)
        listings = current_listings(context.asset_graph_view.instance)
        if not listings:
            return AutomationResult(context, candidates)
        keep = set()
        for key in candidates.expensively_compute_partition_keys():
            day, symbol = _split(key)
            if is_listed(listings, symbol, day):
                keep.add(key)
        return AutomationResult(context, candidates.compute_intersection_with_partition_keys(keep))


class SameDayInputsPresent(AutomationCondition):
    """Every input partition of the partition's own day exists or is requested in this tick.

    ``same_partition``: inputs with the same partitions (the (day, symbol) or
    the day itself). ``listed_symbols``: per-symbol inputs of a daily asset:
    (day, S) for every registered S listed that day. ``same_day``: daily inputs
    of a day x symbol asset: the partition's day.
    """

    def __init__(self, same_partition: Sequence[str] = (), listed_symbols: Sequence[str] = (),
                 same_day: Sequence[str] = ()):
        self.same_partition = tuple(same_partition)
        self.listed_symbols = tuple(listed_symbols)
        self.same_day = tuple(same_day)

    @property
    def name(self) -> str:
        return "same_day_inputs_present"

    @property
    def description(self) -> str:
        parts = [*self.same_partition, *(f"{a} (every symbol listed that day)" for a in self.listed_symbols),
                 *(f"{a} (the partition's day)" for a in self.same_day)]
        return "inputs of the same day present: " + ", ".join(parts)

    async def _missing(self, context: AutomationContext, dep: str, keys: Iterable[str]) -> set[str]:
        view = context.asset_graph_view
        dep_key = AssetKey(dep)
        partitions_def = context.asset_graph.get(dep_key).partitions_def
        subset = view.get_subset_from_partition_keys(dep_key, partitions_def, set(keys))
        missing = set((await view.compute_missing_subset(key=dep_key, from_subset=subset)).expensively_compute_partition_keys())
        requested = context.request_subsets_by_key.get(dep_key)
        if requested is not None and partitions_def == context.partitions_def:
            missing -= set(requested.expensively_compute_partition_keys())  # executes in the same run, first
        return missing

    async def evaluate(self, context: AutomationContext) -> AutomationResult:
        candidates = context.candidate_subset
        if candidates.is_empty or context.partitions_def is None:
            return AutomationResult(context, candidates)
        keys = set(candidates.expensively_compute_partition_keys())
        blocked: set[str] = set()
        for dep in self.same_partition:
            blocked |= await self._missing(context, dep, keys)
        for dep in self.same_day:
            missing_days = await self._missing(context, dep, {_split(k)[0] for k in keys})
            blocked |= {k for k in keys if _split(k)[0] in missing_days}
        if self.listed_symbols:
            instance = context.asset_graph_view.instance
            listings = current_listings(instance)
            symbols = instance.get_dynamic_partitions(SYMBOLS_PARTITION_NAME)
            needs = {day: [f"{day}|{s}" for s in symbols if is_listed(listings, s, day)] for day in keys}
            wanted = {k for ks in needs.values() for k in ks}
            for dep in self.listed_symbols:
                missing = await self._missing(context, dep, wanted)
                blocked |= {day for day, ks in needs.items() if missing.intersection(ks)}
        return AutomationResult(context, candidates.compute_intersection_with_partition_keys(keys - blocked))


def keep_fresh(
    *,
    same_partition: Sequence[str] = (),
    listed_symbols: Sequence[str] = (),
    ignore_updates_of: Sequence[str] = (),
    per_symbol: bool = True,
    same_day: Sequence[str] = (),
    alongside: Sequence[str] = (),
    when_new: bool = False,
) -> AutomationCondition:
    """The condition of every downstream asset; see the module docstring.

    ``alongside``: for an asset without inputs that a source produces beside other
    assets of the same partitions (the simulator's planted signal beside its bars):
    requested when the same partition of one of those is updated, and only where it
    exists (a new symbol's history without data is not requested); no lineage implied.
    ``when_new``: also requested when a partition newly appears (a new day of an asset
    whose data comes from outside the graph).
    """
    updated = AutomationCondition.any_deps_updated()
    if ignore_updates_of:
        updated = updated.ignore(AssetSelection.assets(*ignore_updates_of))
    for other in alongside:
        updated = updated | AutomationCondition.asset_matches(
            other, AutomationCondition.newly_updated() | AutomationCondition.will_be_requested()
        )
    if when_new:
        updated = AutomationCondition.newly_missing() | updated
    condition = (
        updated.since_last_handled()
        & ~AutomationCondition.in_progress()
        & ~AutomationCondition.any_deps_in_progress()
    )
    if per_symbol:
        condition = condition & SymbolListed()
    if same_partition or listed_symbols or same_day or alongside:
        condition = condition & SameDayInputsPresent([*same_partition, *alongside], listed_symbols, same_day)
    return condition.with_label("keep_fresh")


#: Evaluates every asset's condition; running by default (it needs dagster-daemon).
AUTOMATION_SENSOR = AutomationConditionSensorDefinition(
    "keep_fresh_sensor",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    use_user_code_server=True,
    minimum_interval_seconds=settings.get_int("AUTOMATION_INTERVAL_S"),
    description="Carries new and corrected partitions through every downstream layer (declarative automation).",
)
