"""Ingestion triggers: what starts a raw run. Everything downstream follows by declarative automation.

* ``daily_ingestion_schedule`` (02:30 UTC, running by default with the
  simulator and Binance): the previous UTC day for every symbol listed that
  day and not ingested yet;
* ``archive_sensor`` (Binance): requests a day as soon as the archive has
  published it, probing one small ``.CHECKSUM`` file per symbol, backing off
  when the archive is unreachable; the schedule stays as the fallback;
* ``landing_sensor`` (landing source): requests exactly the partitions that new
  or replaced files in the landing folder cover, registers their symbols, and
  reports a file it cannot use once, by name and reason.

Requests are partition ranges (day runs x contiguous symbols), so a day of
200 symbols is one run, never one run per partition. Delisted symbols are
never requested after their delisting day.
"""

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence

from dagster import (
    AddDynamicPartitionsRequest,
    AssetKey,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    schedule,
    sensor,
)

from factor_assets.automation import current_listings
from factor_assets.day_ranges import consecutive_runs, shift_day
from factor_assets.partition_keys import RANGE_END_TAG, RANGE_START_TAG
from factor_assets.raw import RAW_ASSET_KEYS
from factor_core import landing
from factor_core.binance.source import published_symbols
from factor_core.universe import Listings, is_listed
from partitions import PARTITIONS_START_DATE, SYMBOLS_PARTITION_NAME
from resources.market_data import BinanceMarketData, LandingMarketData, MarketDataResource

RAW_SELECTION = [AssetKey(a) for a in RAW_ASSET_KEYS]
ARCHIVE_SENSOR_INTERVAL_S = 900
LANDING_SENSOR_INTERVAL_S = 30
#: Longest the archive sensor waits for a day some symbols never get (a symbol with no file that day).
ARCHIVE_GIVE_UP_DAYS = 3
MAX_BACKOFF_S = 6 * 3600


def last_complete_day(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date() - dt.timedelta(days=1)


def contiguous_blocks(ordered: Sequence[str], wanted: Iterable[str]) -> list[list[str]]:
    """``wanted`` as runs of consecutive entries of ``ordered`` (registration order): one range request each."""
    wanted = set(wanted)
    blocks: list[list[str]] = []
    previous_wanted = False
    for symbol in ordered:
        if symbol in wanted:
            if previous_wanted:
                blocks[-1].append(symbol)
            else:
                blocks.append([symbol])
        previous_wanted = symbol in wanted
    return blocks


def range_request(first_day: str, last_day: str, symbols: Sequence[str], run_key: str, **tags: str) -> RunRequest:
    """One run over days first..last x the (contiguous) symbols, for every raw dataset."""
    return RunRequest(
        run_key=run_key,
        asset_selection=RAW_SELECTION,
        tags={
            RANGE_START_TAG: f"{first_day}|{symbols[0]}",
            RANGE_END_TAG: f"{last_day}|{symbols[-1]}",
            **tags,
        },
    )


def day_requests(day: str, ordered: Sequence[str], wanted: Iterable[str], key_prefix: str, **tags: str) -> list[RunRequest]:
    """Range requests for ``wanted`` symbols of ``day``; ``ordered`` is every registered symbol in registration order."""
    return [
        range_request(day, day, block, f"{key_prefix}-{day}-{block[0]}-{len(block)}", **tags)
        for block in contiguous_blocks(ordered, wanted)
    ]


def registered_order(instance) -> list[str]:
    """Every registered symbol in registration order: the order a partition range's symbols span."""
    return list(instance.get_dynamic_partitions(SYMBOLS_PARTITION_NAME))


def listed_symbols(instance, day: str, listings: Listings | None = None) -> list[str]:
    """Registered symbols listed on ``day``, in registration order."""
    listings = current_listings(instance) if listings is None else listings
    return [s for s in registered_order(instance) if is_listed(listings, s, day)]


# --------------------------------------------------------------------------- daily schedule


def build_daily_schedule(source_name: str):
    @schedule(
        name="daily_ingestion_schedule",
        cron_schedule="30 2 * * *",  # archive files of day D appear during D+1; REST fills any gap
        execution_timezone="UTC",
        target=RAW_SELECTION,
        default_status=DefaultScheduleStatus.STOPPED if source_name == "landing" else DefaultScheduleStatus.RUNNING,
        description="Ingests the previous UTC day for every listed symbol not ingested yet (automation does the rest).",
    )
    def daily_ingestion_schedule(context: ScheduleEvaluationContext):
        day = (context.scheduled_execution_time.astimezone(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
        if day < PARTITIONS_START_DATE.isoformat():
            return SkipReason(f"{day} is before the first partition day {PARTITIONS_START_DATE}")
        symbols = listed_symbols(context.instance, day)
        if not symbols:
            return SkipReason(f"no symbol registered and listed on {day}")
        done = {k.split("|")[1] for k in context.instance.get_materialized_partitions(AssetKey("raw_klines"))
                if k.startswith(day + "|")}
        wanted = [s for s in symbols if s not in done]
        if not wanted:
            return SkipReason(f"every listed symbol already has {day} (the archive sensor got there first)")
        return day_requests(day, registered_order(context.instance), wanted, "daily")

    return daily_ingestion_schedule


# --------------------------------------------------------------------------- archive sensor


@sensor(
    minimum_interval_seconds=ARCHIVE_SENSOR_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests the next UTC day as soon as Binance's archive has published it (CHECKSUM probes).",
)
def archive_sensor(context: SensorEvaluationContext, market_data: MarketDataResource):
    if not isinstance(market_data, BinanceMarketData):
        return SkipReason("the archive sensor serves MARKET_DATA_SOURCE=binance")
    state = json.loads(context.cursor) if context.cursor else {}
    now = dt.datetime.now(dt.UTC)
    if state.get("backoff_until", 0) > now.timestamp():
        return SkipReason(f"backing off after {state['failures']} failed probe(s) until "
                          f"{dt.datetime.fromtimestamp(state['backoff_until'], dt.UTC):%Y-%m-%d %H:%M} UTC")
    complete = last_complete_day(now).isoformat()
    day = state.get("day") or complete
    if day > complete:
        return SkipReason(f"waiting for {day} to end")
    symbols = listed_symbols(context.instance, day)
    pending = [s for s in symbols if s not in set(state.get("done", []))]
    if not pending:
        context.update_cursor(json.dumps({"day": shift_day(day, 1)}))
        return SkipReason(f"{day}: every listed symbol requested; next: {shift_day(day, 1)}")

    def backoff(error: BaseException) -> SkipReason:
        failures = state.get("failures", 0) + 1
        wait_s = min(MAX_BACKOFF_S, ARCHIVE_SENSOR_INTERVAL_S * 2**failures)
        context.update_cursor(json.dumps({**state, "day": day, "failures": failures,
                                          "backoff_until": now.timestamp() + wait_s}))
        return SkipReason(f"archive probe failed ({error}); retrying in {wait_s // 60} min")

    # One cheap probe first: the archive publishes a day for all symbols at about the same time.
    first = published_symbols(market_data.archive_url, pending[:1], dt.date.fromisoformat(day))[pending[0]]
    if isinstance(first, BaseException):
        return backoff(first)
    if not first:
        context.update_cursor(json.dumps({**state, "day": day, "failures": 0, "backoff_until": 0}))
        return SkipReason(f"{day} is not published yet (probed {pending[0]})")
    outcomes = {pending[0]: True}
    if len(pending) > 1:
        outcomes.update(published_symbols(market_data.archive_url, pending[1:], dt.date.fromisoformat(day)))
    ready = [s for s, ok in outcomes.items() if ok is True]
    done = sorted(set(state.get("done", [])) | set(ready))
    still = [s for s in pending if s not in ready]
    gave_up = still and (dt.date.fromisoformat(complete) - dt.date.fromisoformat(day)).days >= ARCHIVE_GIVE_UP_DAYS
    if gave_up:
        context.log.warning(f"archive_sensor: {day} never appeared for {still}; the daily schedule's REST fallback covers them")
    next_state = {"day": shift_day(day, 1)} if not still or gave_up else {"day": day, "done": done}
    return SensorResult(run_requests=day_requests(day, registered_order(context.instance), ready, "archive"),
                        cursor=json.dumps(next_state))


# --------------------------------------------------------------------------- landing sensor


def _versions_key(versions: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(versions)).encode()).hexdigest()[:12]


@sensor(
    minimum_interval_seconds=LANDING_SENSOR_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests exactly the partitions that new or replaced files in the landing folder cover.",
)
def landing_sensor(context: SensorEvaluationContext, market_data: MarketDataResource):
    if not isinstance(market_data, LandingMarketData):
        return SkipReason("the landing sensor serves MARKET_DATA_SOURCE=landing")
    state = json.loads(context.cursor) if context.cursor else {}
    seen: dict[str, str] = state.get("files", {})
    reported: dict[str, str] = state.get("reported", {})
    result = landing.scan(market_data.landing_dir)
    first_day, last_day = PARTITIONS_START_DATE.isoformat(), last_complete_day().isoformat()
    listings = current_listings(context.instance)

    problems: list[str] = []
    for error in result.errors:
        problems.append(f"{error.path}: {error.reason}")
    wanted: dict[str, set[str]] = defaultdict(set)
    versions: dict[str, list[str]] = defaultdict(list)
    for file in result.files:
        if seen.get(file.relative_path) == file.version:
            continue  # handled already
        days = [d.isoformat() for d in file.days]
        outside = [d for d in days if not first_day <= d <= last_day]
        delisted = [d for d in days if d not in outside and not is_listed(listings, file.symbol, d)]
        if outside:
            problems.append(f"{file.path}: day(s) {outside[0]}..{outside[-1]} are outside the partitions "
                            f"({first_day} .. {last_day}); they are ignored")
        if delisted:
            problems.append(f"{file.path}: {file.symbol} is not listed on {delisted[0]}..{delisted[-1]}; ignored")
        usable = [d for d in days if d not in outside and d not in delisted]
        if usable:
            wanted[file.symbol].update(usable)
            versions[file.symbol].append(f"{file.relative_path}:{file.version}")
        seen[file.relative_path] = file.version
    fresh_problems = []
    for problem in problems:
        path = problem.split(": ", 1)[0]
        if reported.get(path) != problem:
            fresh_problems.append(problem)
            reported[path] = problem
    for problem in fresh_problems:
        context.log.warning(f"landing_sensor: {problem}")

    known = set(context.instance.get_dynamic_partitions(SYMBOLS_PARTITION_NAME))
    new_symbols = sorted(s for s in wanted if s not in known)
    requests = [
        range_request(run[0], run[-1], [symbol], f"landing-{symbol}-{run[0]}-{run[-1]}-{_versions_key(versions[symbol])}",
                      **{"factor_pipeline/trigger": "landing"})
        for symbol, days in sorted(wanted.items())
        for run in consecutive_runs(sorted(days), 366)
    ]
    cursor = json.dumps({"files": seen, "reported": reported})
    if not requests and not fresh_problems:
        return SkipReason(f"no new or replaced files in {market_data.landing_dir} ({len(result.files)} known)")
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[AddDynamicPartitionsRequest(SYMBOLS_PARTITION_NAME, new_symbols)] if new_symbols else [],
        cursor=cursor,
        skip_reason=None if requests else SkipReason("; ".join(fresh_problems)[:1000]),
    )


def ingestion_triggers(source_name: str) -> tuple[list, list]:
    """(sensors, schedules) for the configured source."""
    sensors = {"binance": [archive_sensor], "landing": [landing_sensor]}.get(source_name, [])
    return sensors, [build_daily_schedule(source_name)]
