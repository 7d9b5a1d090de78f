"""The documents of a report as bytes: the one place the four renderers are called."""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from monitor.report.jsondoc import report_json
from monitor.report.model import Report

__all__ = ["file_stem", "render_files", "warm_up"]


def file_stem(r: Report) -> str:
    """``jiancha-monthly-2024-03[-税务局][-v2]``: a revision's files never replace the first's."""
    scope = f"-{r.department}" if r.department else ""
    version = f"-v{r.version}" if r.version > 1 else ""
    return f"jiancha-{r.period.kind}-{r.period.key}{scope}{version}"


def warm_up(formats: Sequence[str]) -> threading.Thread:
    """Import the document libraries (a second or two) in a thread while the database
    is read: the reads wait on the server, so the imports cost no time of their own.
    Join it before rendering; a failed import surfaces there again, in order."""

    def load() -> None:
        try:
            if "pdf" in formats or "html" in formats:
                import matplotlib.figure  # noqa: F401

                from monitor.report.charts import cjk_font

                cjk_font()
            if "pdf" in formats:
                import weasyprint  # noqa: F401
            if "xlsx" in formats:
                import xlsxwriter  # noqa: F401
        except Exception:  # render_files imports it again and reports it there
            pass

    thread = threading.Thread(target=load, name="jiancha-report-warm-up", daemon=True)
    thread.start()
    return thread


def render_files(
    r: Report, formats: Sequence[str], lang: str, step: Callable[[str], None] = lambda _: None
) -> dict[str, tuple[str, bytes]]:
    """The documents as bytes, by format (blocking: seconds for a PDF)."""
    from monitor.report.html import render_html
    from monitor.report.pdf import write_pdf
    from monitor.report.xlsx import write_xlsx

    stem = file_stem(r)
    out: dict[str, tuple[str, bytes]] = {}
    html: str | None = None
    if "json" in formats:
        step("JSON")
        text = json.dumps(report_json(r), ensure_ascii=False, indent=2, default=str) + "\n"
        out["json"] = (f"{stem}.json", text.encode())
    if "html" in formats or "pdf" in formats:
        step("HTML")
        html = render_html(r, lang)
        if "html" in formats:
            out["html"] = (f"{stem}.html", html.encode())
    with tempfile.TemporaryDirectory(prefix="jiancha-report-") as tmp:
        if "xlsx" in formats:
            step("XLSX")
            path = write_xlsx(r, Path(tmp) / f"{stem}.xlsx", lang)
            out["xlsx"] = (path.name, path.read_bytes())
        if "pdf" in formats:
            step("PDF")
            path = write_pdf(r, Path(tmp) / f"{stem}.pdf", lang, html)
            out["pdf"] = (path.name, path.read_bytes())
    return out
