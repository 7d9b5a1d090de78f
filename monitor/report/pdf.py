"""The bulletin as PDF: WeasyPrint lays out the same HTML in the CJK font."""

from __future__ import annotations

from pathlib import Path

from monitor.report.charts import cjk_font
from monitor.report.html import render_html
from monitor.report.model import Report

__all__ = ["write_pdf"]


def write_pdf(r: Report, path: Path, lang: str = "zh", html: str | None = None) -> Path:
    """Write the PDF to ``path`` (from ``html`` when already rendered)."""
    import logging

    cjk_font()  # a missing font fails here, by name, not as boxes in the document
    import weasyprint

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # subsetting is chatty
    weasyprint.HTML(string=html or render_html(r, lang)).write_pdf(str(path))
    return path
