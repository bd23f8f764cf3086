"""Tear sheets in the Dagster UI and on disk: PNG images as markdown metadata, HTML pages under the data root.

The images come from ``factor_core.research.tearsheet`` (matplotlib, Agg canvas,
no display). Each one becomes a markdown metadata entry holding the PNG as a
``data:image/png;base64,...`` image, so the UI shows it on the asset's
materialization. The HTML pages (``factor_core.research.report``) are
self-contained (images inline) and written atomically to
``<data root>/reports/<asset>.html``; the metadata gives their path.
"""

import base64
from collections.abc import Mapping
from pathlib import Path

from dagster import MetadataValue

from factor_core.atomic_files import write_files_atomically

REPORTS_DIR = "reports"
#: Pages of the research layer, linked from one another.
REPORT_PAGES = {"backtest_summary": "Backtest summary", "factor_report": "Factor IC report"}


def image_metadata(images: Mapping[str, bytes]) -> dict[str, MetadataValue]:
    """One markdown entry per image (``tear_sheet_<name>``), the PNG inline."""
    out = {}
    for name, png in images.items():
        encoded = base64.b64encode(png).decode("ascii")
        out[f"tear_sheet_{name}"] = MetadataValue.md(f"![{name}](data:image/png;base64,{encoded})")
    return out


def report_path(data_root: Path, page: str) -> Path:
    return Path(data_root) / REPORTS_DIR / f"{page}.html"


def page_links(current: str) -> str:
    """HTML links to the other research pages (they live side by side)."""
    links = [f"<a href='{page}.html'>{title}</a>" for page, title in REPORT_PAGES.items() if page != current]
    return "<p>See also: " + " | ".join(links) + "</p>" if links else ""


def write_report(data_root: Path, page: str, html: str) -> Path:
    """Write ``html`` (linked to the other pages) to ``<data root>/reports/<page>.html``, atomically."""
    path = report_path(data_root, page)
    body = html.replace("</h1>", "</h1>" + page_links(page), 1).encode("utf-8")
    write_files_atomically([(path, lambda handle: handle.write(body))])
    return path
