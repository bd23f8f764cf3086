"""Small generated news frames shared by the news / sentiment tests."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from factor_core.news.items import items_frame

DAY = dt.date(2024, 1, 2)


def at(hour: int, minute: int = 0, day: dt.date = DAY) -> pd.Timestamp:
    return pd.Timestamp(day.isoformat(), tz="UTC") + pd.Timedelta(hours=hour, minutes=minute)


def news(*items: tuple[str, str, list[str]], day: dt.date = DAY, text: str = "", start_hour: int = 1) -> pd.DataFrame:
    """A news_items frame: one (title, url, symbols) per item, published an hour apart."""
    return items_frame(
        {"published_at": at(start_hour + n, 0, day), "source": "test", "title": title, "text": text,
         "url": url, "symbols": symbols}
        for n, (title, url, symbols) in enumerate(items)
    )
