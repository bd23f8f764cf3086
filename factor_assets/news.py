"""News layer: ``news_items`` per UTC day, and the sensor that notices news files in the landing folder.

``news_items`` (day) gathers the configured sources (``news_sources`` resource):
the synthetic newswire (headlines about every symbol registered and listed that
day, following the simulator's planted signal), the landing folder's
``news/*.jsonl`` and RSS / Atom feeds. A range run reads the landing folder and
the feeds once, then builds each day in chunks (``factor_core.news.assemble_news_items``):
alias matching, de-duplication, the day's window. Feed items the feeds no
longer list are carried over from the partition's previous version, so
re-building an old day never loses them. Written with ``NEWS_ITEMS_SCHEMA``
(stable column types on a day without news).

A landing file with a bad line is refused by default (``NEWS_ON_BAD_LINE=error``):
the step fails naming the file and every bad line, and no partition of the run
is stored. ``news_landing_sensor`` requests exactly the days that new, replaced
or removed news files cover, and while a refused file is in the folder it
requests nothing and reports that file once.
"""


import datetime as dt
import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetSelection,
    BackfillPolicy,
    DefaultSensorStatus,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    sensor,
)

from factor_assets.automation import keep_fresh
from factor_assets.chunks import ChunkResult, run_chunks
from factor_assets.day_ranges import consecutive_runs
from factor_assets.partition_keys import run_days
from factor_core.landing.scan import fingerprint
from factor_core.news import AliasTable, SyntheticNewswire, assemble_news_items, carry_feed_items
from factor_core.news.feeds import FeedsRead
from factor_core.news.items import to_arrow as news_items_table
from factor_core.news.landing import LandingRead, read_file
from factor_core.partition_store import PartitionedInput, PartitionStore
from factor_core.simulator import SimulatorConfig
from factor_core.universe import Listings, is_listed, listings_of
from partitions import DAILY, PARTITIONS_START_DATE, SYMBOLS_PARTITION_NAME
from resources.market_data import MarketDataResource, SyntheticMarketData
from resources.parquet_io_manager import PartitionStoreResource, StagedPartitions
from resources.sentiment import NewsSourcesResource

SENTIMENT_GROUP = "sentiment"
DAYS_PER_CHUNK = 16
NEWS_SENSOR_INTERVAL_S = 30
#: Most symbols listed in a partition's ``items_per_symbol`` metadata (the busiest ones).
_LISTED_SYMBOLS = 20


def _day_of(ts) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%d")


def _by_day(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        out[_day_of(record["published_at"])].append(record)
    return out


@dataclass(frozen=True)
class NewsChunk:
    store: PartitionStore
    days: tuple[str, ...]
    aliases: AliasTable
    universes: dict[str, tuple[str, ...]]  # symbols listed each day: the newswire's subjects
    sim: SimulatorConfig | None  # None: the newswire is not a source
    landing: dict[str, LandingRead] | None  # each day's landed items (all files read once by the step)
    feeds: dict[str, FeedsRead] | None
    feed_sources: tuple[str, ...]

    @property
    def partitions(self) -> list[str]:
        return list(self.days)


def _metadata(result_metadata: dict, frame: pd.DataFrame) -> dict[str, MetadataValue]:
    out: dict[str, MetadataValue] = {"rows": MetadataValue.int(len(frame))}
    if len(frame):
        out["published_min"] = MetadataValue.text(str(frame["published_at"].min()))
        out["published_max"] = MetadataValue.text(str(frame["published_at"].max()))
        out["items_by_source"] = MetadataValue.json(
            dict(Counter(s.split(":", 1)[0] if s.startswith(("landing:", "synthetic:")) else s
                         for s in frame["source"]).most_common(10)))
    for key, value in result_metadata.items():
        if key == "items_per_symbol":
            busiest = sorted(value.items(), key=lambda kv: (-kv[1], kv[0]))[:_LISTED_SYMBOLS]
            out["symbols_mentioned"] = MetadataValue.int(len(value))
            out["items_per_symbol"] = MetadataValue.json(dict(busiest))
        elif isinstance(value, list):
            out[key] = MetadataValue.json(value)
        elif isinstance(value, int):
            out[key] = MetadataValue.int(value)
    return out


def news_chunk(chunk: NewsChunk) -> ChunkResult:
    """The ``news_items`` partitions of the chunk's days, staged (runs in a worker process)."""
    result = ChunkResult(staged={"news_items": []}, metadata={"news_items": {}})
    for day in chunk.days:
        date = dt.date.fromisoformat(day)
        newswire = SyntheticNewswire(chunk.universes[day], chunk.sim) if chunk.sim is not None else None
        built = assemble_news_items(
            date, chunk.aliases, newswire=newswire,
            landing=chunk.landing.get(day) if chunk.landing is not None else None,
            feeds=chunk.feeds.get(day) if chunk.feeds is not None else None,
        )
        dims = {"date": day}
        if chunk.feed_sources and chunk.store.exists("news_items", dims):
            previous = chunk.store.read("news_items", dims).to_pandas()
            built = carry_feed_items(built, previous, chunk.feed_sources)
        result.staged["news_items"].append(chunk.store.stage("news_items", dims, news_items_table(built.frame)))
        result.metadata["news_items"][day] = _metadata(built.metadata, built.frame)
    return result


def _split_landing(landing: LandingRead | None, days: list[str]) -> dict[str, LandingRead] | None:
    if landing is None:
        return None
    records = _by_day(landing.records)
    return {d: LandingRead(records.get(d, []), landing.files, landing.bad_lines) for d in days}


def _split_feeds(feeds: FeedsRead | None, days: list[str]) -> dict[str, FeedsRead] | None:
    if feeds is None:
        return None
    records = _by_day(feeds.records)
    return {d: FeedsRead(records.get(d, []), feeds.entries_per_feed, feeds.undated_dropped, feeds.errors) for d in days}


def newswire_simulator(market_data: MarketDataResource) -> SimulatorConfig:
    """The newswire narrates the market simulator's planted signal: same seed, same configuration."""
    if isinstance(market_data, SyntheticMarketData):
        return market_data.simulator_config()
    return SimulatorConfig()


def _listings(symbol_universe: PartitionedInput) -> Listings:
    table = symbol_universe.table({})
    return {} if table is None else listings_of(table.to_pandas())


@asset(
    group_name=SENTIMENT_GROUP,
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
    io_manager_key="parquet_io_manager",
    kinds={"parquet"},
    # No upstream data asset: a new day (newly missing) or the landing sensor requests it.
    automation_condition=keep_fresh(ignore_updates_of=["symbol_universe"], per_symbol=False, when_new=True),
    ins={"symbol_universe": AssetIn(metadata={"allow_missing_partitions": True})},
    description=(
        "News items published inside the UTC day, from the configured sources (synthetic newswire, landing "
        "news/*.jsonl, RSS / Atom feeds): item_id, published_at, source, title, text, url and the symbols each "
        "mentions (alias table, word boundaries), de-duplicated by URL or content. Schema: docs/sentiment.md."
    ),
)
def news_items(
    context: AssetExecutionContext,
    partition_store: PartitionStoreResource,
    news_sources: NewsSourcesResource,
    market_data: MarketDataResource,
    symbol_universe: PartitionedInput,
) -> StagedPartitions:
    days = run_days(context)
    listings = _listings(symbol_universe)
    registered = list(context.instance.get_dynamic_partitions(SYMBOLS_PARTITION_NAME))
    # The landing folder and the feeds are read once for the whole run, then split by day.
    landing = news_sources.read_landing()
    feeds = news_sources.read_feeds()
    if feeds is not None:
        context.log.info(f"news feeds: entries per feed {feeds.entries_per_feed}; {len(feeds.errors)} failed (skipped)")
    landing_by_day, feeds_by_day = _split_landing(landing, days), _split_feeds(feeds, days)
    sim = newswire_simulator(market_data) if news_sources.uses("synthetic") else None
    aliases = news_sources.alias_table(registered)
    feed_sources = tuple(news_sources.feed_urls) if news_sources.uses("feeds") else ()
    chunks = []
    for run in consecutive_runs(days, DAYS_PER_CHUNK):
        chunks.append(NewsChunk(
            store=partition_store.store, days=run, aliases=aliases,
            universes={d: tuple(s for s in registered if is_listed(listings, s, d)) for d in run}, sim=sim,
            landing={d: landing_by_day[d] for d in run} if landing_by_day is not None else None,
            feeds={d: feeds_by_day[d] for d in run} if feeds_by_day is not None else None,
            feed_sources=feed_sources,
        ))
    return run_chunks(context, "news_items", news_chunk, chunks).output("news_items")


NEWS_ASSETS = [news_items]


# --------------------------------------------------------------------------- landing sensor


def _file_version(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}:{fingerprint(path, stat.st_size)}"


def _refusal(path: Path, bad) -> str:
    listed = "; ".join(f"line {b.line}: {b.problem}" for b in bad[:3])
    more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
    return (f"{path}: {len(bad)} bad line(s), file refused: {listed}{more}. news_items is not requested while "
            "it is in the folder (every news_items run would fail on it); fix or remove the lines, or set "
            "NEWS_ON_BAD_LINE=skip to keep the other lines")


def _last_complete_day() -> str:
    return (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()


def build_news_landing_sensor(enabled: bool):
    """``news_landing_sensor``: running by default when the landing folder is a news source."""

    @sensor(
        name="news_landing_sensor",
        target=AssetSelection.assets("news_items"),
        minimum_interval_seconds=NEWS_SENSOR_INTERVAL_S,
        default_status=DefaultSensorStatus.RUNNING if enabled else DefaultSensorStatus.STOPPED,
        description="Requests exactly the news_items days that new, replaced or removed landing news files cover.",
    )
    def news_landing_sensor(context: SensorEvaluationContext, news_sources: NewsSourcesResource):
        return news_landing_tick(context, news_sources)

    return news_landing_sensor


def news_landing_tick(context: SensorEvaluationContext, news_sources: NewsSourcesResource):
    """One evaluation of the news landing sensor.

    Cursor: per file its version (size, mtime, content fingerprint) and the
    days its items cover; days still to request; problems already reported.
    A replaced or removed file also requests the days its previous version
    covered (items may have gone). Days before the first partition are
    reported; days not complete yet are left to automation (a new day's
    ``news_items`` reads the folder when the day ends).
    """
    if not news_sources.uses("landing"):
        return SkipReason("the landing folder is not one of NEWS_SOURCES")
    state = json.loads(context.cursor) if context.cursor else {}
    known: dict[str, dict] = state.get("files", {})
    pending: set[str] = set(state.get("pending", []))
    reported: dict[str, str] = state.get("reported", {})
    folder = news_sources.news_dir
    present = {p.name: p for p in sorted(folder.glob("*.jsonl"))} if folder.is_dir() else {}
    problems: dict[str, str] = {}
    first_day, last_day = PARTITIONS_START_DATE.isoformat(), _last_complete_day()

    for name, path in present.items():
        version = _file_version(path)
        entry = known.get(name)
        if entry is not None and entry["version"] == version:
            if entry.get("refused"):
                problems[name] = entry["refused"]
            continue
        previous_days = entry["days"] if entry is not None else []
        records, bad = read_file(path)
        pending.update(previous_days)  # what is stored came from the previous version
        if bad and news_sources.on_bad_line == "error":
            problems[name] = _refusal(path, bad)
            known[name] = {"version": version, "days": previous_days, "refused": problems[name]}
            continue
        days = sorted({_day_of(r["published_at"]) for r in records})
        if bad:
            problems[name] = f"{path}: {len(bad)} bad line(s) skipped (NEWS_ON_BAD_LINE=skip): " + \
                "; ".join(f"line {b.line}: {b.problem}" for b in bad[:3])
        early = [d for d in days if d < first_day]
        if early:
            problems[name] = f"{path}: items of {early[0]}..{early[-1]} are before the first partition {first_day}; ignored"
        pending.update(d for d in days if d >= first_day)
        known[name] = {"version": version, "days": days}
    for name in sorted(set(known) - set(present)):  # removed: its items leave their days
        pending.update(known.pop(name)["days"])

    fresh = {name: problem for name, problem in problems.items() if reported.get(name) != problem}
    reported = {name: problem for name, problem in problems.items()}
    for problem in fresh.values():
        context.log.warning(f"news_landing_sensor: {problem}")
    refused = sorted(name for name, entry in known.items() if entry.get("refused"))
    requests = []
    if not refused:
        ready = sorted(d for d in pending if first_day <= d <= last_day)
        versions = hashlib.sha256(json.dumps(known, sort_keys=True).encode()).hexdigest()[:12]
        requests = [
            RunRequest(
                run_key=f"news-landing-{run[0]}-{run[-1]}-{versions}",
                asset_selection=[AssetKey("news_items")],
                tags={"dagster/asset_partition_range_start": run[0], "dagster/asset_partition_range_end": run[-1],
                      "factor_pipeline/trigger": "news_landing"},
            )
            for run in consecutive_runs(ready, 366)
        ]
        pending = set()  # requested, or not a complete day yet (automation builds a new day)
    cursor = json.dumps({"files": known, "pending": sorted(pending), "reported": reported})
    if requests:
        return SensorResult(run_requests=requests, cursor=cursor)
    if refused:
        why = f"refused file(s) in {folder}: {', '.join(refused)}; nothing is requested until they are fixed or removed"
    else:
        why = f"no new, replaced or removed news files in {folder} ({len(present)} known)"
    if fresh:
        why = "; ".join(fresh.values())[:1000]
    return SensorResult(run_requests=[], cursor=cursor, skip_reason=SkipReason(why))
