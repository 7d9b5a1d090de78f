"""Bulletins (日监测、周通报、月总结): the figures of a period as documents.

``build_report`` reads a period through ``fetch`` (the one place with SQL)
and ``assemble`` (pure) makes a typed `Report`; the renderers lay it out as
JSON, HTML, XLSX and PDF. The command is ``jiancha report``; the daemon's
schedule and ``jiancha.reports`` will call the same ``build_report``.
"""

from monitor.report.build import build_report
from monitor.report.charts import FontMissing
from monitor.report.html import render_html, title
from monitor.report.jsondoc import report_json
from monitor.report.model import Figures, Report
from monitor.report.pdf import write_pdf
from monitor.report.period import KINDS, Kind, Period, PeriodError, last_complete, parse_period
from monitor.report.xlsx import write_xlsx

__all__ = [
    "KINDS",
    "Figures",
    "FontMissing",
    "Kind",
    "Period",
    "PeriodError",
    "Report",
    "build_report",
    "last_complete",
    "parse_period",
    "render_html",
    "report_json",
    "title",
    "write_pdf",
    "write_xlsx",
]
