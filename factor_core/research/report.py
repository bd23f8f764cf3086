"""Human-readable output: the summary as a text table (``factor-pipeline report``) and the HTML report.

Formatting: fractions print as percentages with 3 significant digits
(``11.8%``, ``-0.594%``; whole numbers from 100 %), ratios with 3 significant
digits, dates as ``YYYY-MM-DD``, missing values as ``n/a``. A strategy with
fewer than ``SHORT_SAMPLE_DAYS`` days is marked ``*`` and one that uses a
planted factor ``(planted)``, each with a footnote.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping

import pandas as pd

from factor_core.research.metrics import SHORT_SAMPLE_DAYS

# (column, header, kind): kind is pct (fraction), num (ratio), int, date.
SUMMARY_LAYOUT = (
    ("total_return", "total", "pct"), ("cagr", "CAGR", "pct"), ("annual_volatility", "vol", "pct"),
    ("sharpe", "Sharpe", "num"), ("sortino", "Sortino", "num"), ("max_drawdown", "max DD", "pct"),
    ("calmar", "Calmar", "num"), ("win_rate", "win", "pct"), ("mean_ic", "mean IC", "num"),
    ("ic_ir", "IC IR", "num"), ("mean_turnover", "turnover/d", "num"), ("total_fee_cost", "fees", "pct"),
    ("total_spread_cost", "spread", "pct"), ("total_funding", "funding", "pct"), ("start", "start", "date"),
    ("end", "end", "date"), ("days", "days", "int"),
)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


def format_percent(value) -> str:
    """A fraction as a percentage with 3 significant digits (no exponent; whole numbers from 100 %)."""
    if _missing(value):
        return "n/a"
    pct = float(value) * 100.0
    if pct == 0:
        return "0%"
    if abs(pct) >= 100:
        return f"{pct:,.0f}%"
    decimals = max(0, 2 - math.floor(math.log10(abs(pct))))
    return f"{pct:.{decimals}f}%"


def format_number(value) -> str:
    """A ratio with 3 significant digits (no exponent below 1e6)."""
    if _missing(value):
        return "n/a"
    x = float(value)
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    decimals = max(0, 2 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def format_date(value) -> str:
    return "n/a" if _missing(value) else pd.Timestamp(value).strftime("%Y-%m-%d")


def _cell(value, kind: str) -> str:
    if kind == "pct":
        return format_percent(value)
    if kind == "num":
        return format_number(value)
    if kind == "date":
        return format_date(value)
    return "n/a" if _missing(value) else str(int(value))


def _strategy_label(row: Mapping) -> str:
    label = str(row["strategy"])
    if row.get("uses_planted_factor"):
        label += " (planted)"
    if row.get("short_sample"):
        label += " *"
    return label


def summary_cells(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and formatted rows of the summary table (shared by the text and HTML renderings)."""
    headers = ["strategy"] + [h for c, h, _ in SUMMARY_LAYOUT if c in summary.columns]
    rows = []
    for record in summary.to_dict("records"):
        rows.append([_strategy_label(record)]
                    + [_cell(record[c], kind) for c, _, kind in SUMMARY_LAYOUT if c in summary.columns])
    return headers, rows


def _footnotes(summary: pd.DataFrame) -> list[str]:
    notes = []
    if "short_sample" in summary.columns and summary["short_sample"].any():
        notes.append(f"* fewer than {SHORT_SAMPLE_DAYS} days: annualised figures are not reliable")
    if "uses_planted_factor" in summary.columns and summary["uses_planted_factor"].any():
        notes.append("(planted) trades the simulator's planted signal: a check of the machinery, not an alpha")
    notes.append("Sharpe = mean / std (ddof 1) x sqrt(365) of daily net returns; returns compounded; "
                 "max DD from a start of 1; costs and funding are totals (funding > 0 = received)")
    return notes


def format_summary_table(summary: pd.DataFrame) -> str:
    """``backtest_summary`` as an aligned text table with footnotes (for ``factor-pipeline report``)."""
    if summary is None or summary.empty:
        return "no backtest summary yet: materialize backtest_daily and backtest_summary first"
    headers, rows = summary_cells(summary)
    widths = [max(len(headers[i]), *(len(r[i]) for r in rows)) for i in range(len(headers))]
    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    out = [line(headers), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]
    return "\n".join(out + [""] + _footnotes(summary))


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table (what the Dagster UI renders in markdown metadata)."""
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(headers), "|" + "---|" * len(headers), *(line(r) for r in rows)])


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def factor_report_cells(report: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and formatted rows of the factor IC table, strongest |mean rank IC| first within each horizon."""
    layout = (("n_hours", "hours", "int"), ("mean_rank_ic", "mean rank IC", "num"),
              ("rank_ic_ir", "rank IC IR", "num"), ("rank_ic_t_nw", "t (Newey-West)", "num"),
              ("rank_ic_hit_rate", "hit rate", "pct"), ("rank_ic_decay", "decay vs 1h", "num"),
              ("rank_autocorr", "rank autocorr", "num"), ("mean_ic", "mean IC", "num"))
    headers = ["factor", "horizon"] + [h for _, h, _ in layout]
    rows = []
    ordered = report.assign(a=report["mean_rank_ic"].abs()).sort_values(["horizon_h", "a"], ascending=[True, False])
    for record in ordered.to_dict("records"):
        name = record["factor"] + (" (planted)" if record.get("planted") else "")
        rows.append([name, f"{record['horizon_h']}h"] + [_cell(record[c], k) for c, _, k in layout])
    return headers, rows


def render_html_report(
    summary: pd.DataFrame,
    images: Mapping[str, bytes],
    *,
    report: pd.DataFrame | None = None,
    skipped: Mapping[str, str] | None = None,
    title: str = "factor-pipeline research report",
) -> str:
    """A self-contained HTML page: summary table, skipped strategies, every image (inline PNG), factor table."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;"
             "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}</style>",
             f"</head><body><h1>{html.escape(title)}</h1>"]
    if summary is not None and not summary.empty:
        parts.append("<h2>Backtest summary</h2>" + _html_table(*summary_cells(summary)))
        parts.append("".join(f"<p><small>{html.escape(n)}</small></p>" for n in _footnotes(summary)))
    if skipped:
        parts.append("<h2>Skipped strategies</h2><ul>"
                     + "".join(f"<li>{html.escape(reason)}</li>" for reason in skipped.values()) + "</ul>")
    for name, png in images.items():
        encoded = base64.b64encode(png).decode("ascii")
        parts.append(f"<h2>{html.escape(name.replace('_', ' '))}</h2>"
                     f"<img alt='{html.escape(name)}' src='data:image/png;base64,{encoded}'>")
    if report is not None and not report.empty:
        parts.append("<h2>Factor IC report</h2>" + _html_table(*factor_report_cells(report)))
    parts.append("</body></html>")
    return "\n".join(parts)
