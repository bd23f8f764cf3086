"""Synthetic newswire: the offline default news source, carrying the simulator's planted signal.

Two kinds of headline per symbol, a pure function of ``(simulator seed,
symbol, day, config)``:

* **outlook** -- for each hour boundary ``T`` = 01:00 .. 24:00 of the day,
  with probability ``coverage``, one headline published at a uniform time in
  ``(T - 59 min, T - 1 min)``, i.e. strictly before the hour it informs. Its
  tone is ``tanh((signal_T + tone_noise * e) / 2)`` with ``signal_T`` the
  simulator's :func:`~factor_core.simulator.planted_signal` (the one that
  drives the idiosyncratic return over ``[T, T + 1h)``) and ``e ~ N(0, 1)``.
  So ``corr(tone, signal_T) ~ 1 / sqrt(1 + tone_noise**2)`` and an as-of
  sentiment that uses it earns an information coefficient of about
  ``signal_ic * corr(sentiment_T, signal_T)``, never more.
* **move report** -- when ``move_reports`` is on, for each hour ``H`` of the
  day a report published inside ``[H + 20 min, H + 56 min)`` describes the
  simulated price move since ``H`` (only minutes closed before publication),
  if the move is large (realised-vol z-score ``|z| >= move_z_threshold``),
  with tone ``tanh(z / 1.5)``. Real wires report moves as they happen; these
  reports know nothing of the future, but they describe the hour they are
  published in. A join that lets a value stamped at ``t`` see items
  published after ``t`` therefore picks up the return it is supposed to
  predict, and its IC rises far above the planted one: look-ahead shows.

Headline wording follows the tone (five buckets of lexicon-friendly
templates), so the VADER offline scorer and an LLM also recover part of the
signal; :class:`factor_core.sentiment.offline.NewswireScorer` returns the
exact tone and is labelled ``model = "synthetic:newswire"``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from factor_core.news.aliases import DEFAULT_ALIASES, AliasTable
from factor_core.news.items import make_item_id
from factor_core.simulator import SimulatorConfig, planted_signal, simulate_day

NEWSWIRE_SOURCE = "synthetic:newswire"
_URL_PREFIX = "synthetic://newswire/"
_VERSION = "newswire-v1"

_OUTLOOK_TEMPLATES: tuple[tuple[str, ...], ...] = (
    (  # very negative
        "{name} slumps as traders brace for heavy losses",
        "Analysts warn of a sharp sell-off in {name}",
        "{name} outlook turns grim amid panic selling",
    ),
    (  # negative
        "{name} under pressure as sentiment weakens",
        "Traders grow cautious on {name} after weak flows",
        "{name} faces resistance; analysts see downside risk",
    ),
    (  # neutral
        "{name} trades flat as the market awaits direction",
        "{name} volumes steady in a quiet session",
        "Mixed signals for {name} ahead of the next hour",
    ),
    (  # positive
        "{name} gains support as buyers return",
        "Analysts see upside for {name} on healthy demand",
        "{name} sentiment improves on steady inflows",
    ),
    (  # very positive
        "{name} rallies as traders turn strongly bullish",
        "Strong demand lifts {name}; analysts expect big gains",
        "{name} surges on excellent momentum and optimism",
    ),
)
_MOVE_VERBS = {"up": ("climbs", "jumps", "soars"), "down": ("dips", "slides", "plunges")}
_TONE_EDGES = (-0.6, -0.2, 0.2, 0.6)


@dataclass(frozen=True)
class NewswireConfig:
    """Knobs of the synthetic newswire; every field is part of the determinism key."""

    coverage: float = 0.85  # probability that a symbol-hour has an outlook headline
    tone_noise: float = 1.0  # noise sd added to the planted signal before the tone
    move_reports: bool = True
    move_z_threshold: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.coverage <= 1.0:
            raise ValueError(f"newswire coverage must lie in [0, 1], got {self.coverage!r}")
        if not self.tone_noise >= 0.0:
            raise ValueError(f"newswire tone_noise must be >= 0, got {self.tone_noise!r}")
        if not self.move_z_threshold >= 0.0:
            raise ValueError(f"newswire move_z_threshold must be >= 0, got {self.move_z_threshold!r}")


@dataclass(frozen=True)
class WireItem:
    """One generated headline before naming; ``tone`` is the wire's own score in [-1, 1]."""

    url: str
    published_at: pd.Timestamp
    kind: str  # "outlook" or "move"
    tone: float
    template: int
    minutes: int = 0  # move reports: minutes since the hour start
    move_pct: float = 0.0


def _rng(*parts: object) -> np.random.Generator:
    text = "|".join(str(p) for p in (_VERSION, *parts))
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=16).digest(), "little")
    return np.random.Generator(np.random.PCG64(seed))


def _bucket(tone: float) -> int:
    return int(np.searchsorted(_TONE_EDGES, tone))


def _outlooks(sim: SimulatorConfig, config: NewswireConfig, symbol: str, day: dt.date) -> list[WireItem]:
    signal = planted_signal(symbol, day, sim)
    rng = _rng(sim.seed, symbol, day.isoformat(), "outlook")
    n = len(signal)
    covered = rng.random(n) < config.coverage
    lead_s = rng.uniform(60.0, 59 * 60.0, n)  # published 1..59 minutes before T
    noise = rng.standard_normal(n)
    template = rng.integers(0, 3, n)
    items = []
    for i, (known_at, value) in enumerate(zip(signal["known_at"], signal["signal"])):
        if not covered[i]:
            continue
        tone = math.tanh((float(value) + config.tone_noise * noise[i]) / 2.0)
        hour = (known_at - pd.Timestamp(day.isoformat(), tz="UTC")) // pd.Timedelta(hours=1)
        items.append(
            WireItem(
                url=f"{_URL_PREFIX}{day.isoformat()}/{symbol}/outlook/{hour:02d}",
                published_at=(known_at - pd.Timedelta(seconds=float(lead_s[i]))).floor("s"),
                kind="outlook",
                tone=tone,
                template=int(template[i]),
            )
        )
    return items


def _move_reports(sim: SimulatorConfig, config: NewswireConfig, symbol: str, day: dt.date) -> list[WireItem]:
    klines = simulate_day(symbol, day, sim).klines
    opens = klines["open"].to_numpy(np.float64)
    closes = klines["close"].to_numpy(np.float64)
    rng = _rng(sim.seed, symbol, day.isoformat(), "move")
    minutes = rng.integers(20, 56, 24)
    delay_s = rng.uniform(1.0, 50.0, 24)
    template = rng.integers(0, 3, 24)
    day_start = pd.Timestamp(day.isoformat(), tz="UTC")
    items = []
    for hour in range(24):
        first, m = hour * 60, int(minutes[hour])
        path = np.concatenate(([opens[first]], closes[first : first + m]))
        steps = np.diff(np.log(path))
        realised = math.sqrt(float(np.sum(steps**2)))
        if realised <= 0.0:
            continue
        move = float(np.log(path[-1] / path[0]))
        z = move / realised
        if abs(z) < config.move_z_threshold:
            continue
        items.append(
            WireItem(
                url=f"{_URL_PREFIX}{day.isoformat()}/{symbol}/move/{hour:02d}",
                # minute first+m-1 closes at first+m minutes; published after that
                published_at=(day_start + pd.Timedelta(minutes=first + m, seconds=float(delay_s[hour]))).floor("s"),
                kind="move",
                tone=math.tanh(z / 1.5),
                template=int(template[hour]),
                minutes=m,
                move_pct=100.0 * math.expm1(move),
            )
        )
    return items


@lru_cache(maxsize=512)
def wire_items(sim: SimulatorConfig, config: NewswireConfig, symbol: str, day: dt.date) -> tuple[WireItem, ...]:
    """Every headline of one symbol-day, by publication time (memoised; pure)."""
    items = _outlooks(sim, config, symbol, day)
    if config.move_reports:
        items += _move_reports(sim, config, symbol, day)
    return tuple(sorted(items, key=lambda w: (w.published_at, w.url)))


def parse_wire_url(url: str) -> tuple[str, dt.date] | None:
    """``(symbol, day)`` of a newswire item URL, None for any other URL."""
    if not url or not url.startswith(_URL_PREFIX):
        return None
    parts = url[len(_URL_PREFIX) :].split("/")
    if len(parts) != 4:
        return None
    try:
        return parts[1], dt.date.fromisoformat(parts[0])
    except ValueError:
        return None


class SyntheticNewswire:
    """News source: headlines for ``symbols`` whose tone follows the planted signal.

    ``aliases`` chooses the names the headlines use (so alias matching and
    anonymisation are exercised); items carry their symbol explicitly.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        sim: SimulatorConfig = SimulatorConfig(),
        config: NewswireConfig = NewswireConfig(),
        aliases: AliasTable | None = None,
    ):
        self.symbols = tuple(symbols)
        self.sim, self.config = sim, config
        self.aliases = aliases or AliasTable.for_symbols(self.symbols, DEFAULT_ALIASES)

    def _name(self, symbol: str, rng: np.random.Generator) -> str:
        names = self.aliases.names(symbol) if symbol in self.aliases.symbols else (symbol,)
        choices = names[1:] or names
        return choices[int(rng.integers(0, len(choices)))]

    def records(self, day: dt.date) -> list[dict]:
        """Items of ``day`` for every symbol (dicts for ``items_frame``), by publication time."""
        out = []
        for symbol in self.symbols:
            rng = _rng(self.sim.seed, symbol, day.isoformat(), "names")
            for item in wire_items(self.sim, self.config, symbol, day):
                name = self._name(symbol, rng)
                if item.kind == "outlook":
                    bucket = _OUTLOOK_TEMPLATES[_bucket(item.tone)]
                    title = bucket[item.template].format(name=name)
                    text = bucket[(item.template + 1) % 3].format(name=name) + "."
                else:
                    direction = "up" if item.move_pct >= 0 else "down"
                    verb = _MOVE_VERBS[direction][min(2, int(abs(item.tone) * 3))]
                    title = f"{name} {verb} {abs(item.move_pct):.2f}% in {item.minutes} minutes"
                    text = f"{name} {'rises' if direction == 'up' else 'falls'} in the current hour."
                out.append(
                    {
                        "item_id": make_item_id(item.url, title, text),
                        "published_at": item.published_at,
                        "source": NEWSWIRE_SOURCE,
                        "title": title,
                        "text": text,
                        "url": item.url,
                        "symbols": [symbol],
                    }
                )
        out.sort(key=lambda r: (r["published_at"], r["url"]))
        return out

    def tone(self, url: str) -> float | None:
        """The wire's own tone of the item at ``url``; None when the URL is not one of its items."""
        parsed = parse_wire_url(url)
        if parsed is None:
            return None
        symbol, day = parsed
        try:
            items = wire_items(self.sim, self.config, symbol, day)
        except ValueError:  # invalid symbol or a day outside the simulator's range
            return None
        return next((w.tone for w in items if w.url == url), None)
