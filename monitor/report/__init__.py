"""Bulletins (日监测、周通报、月总结): the figures of a period as documents.

``build_report`` reads a period through ``fetch`` (the one place with SQL)
and ``assemble`` (pure) makes a typed `Report`; the renderers lay it out as
JSON, HTML, XLSX and PDF; ``publish`` keeps each version in
``jiancha.reports`` (``store``, ``versions``). The command is ``jiancha
report``; the daemon's schedule (``schedule``) calls the same functions.
"""

from monitor.report.build import build_report
from monitor.report.charts import FontMissing
from monitor.report.html import render_html, title
from monitor.report.jsondoc import report_json
from monitor.report.model import Figures, Report
from monitor.report.pdf import write_pdf
from monitor.report.period import KINDS, Kind, Period, PeriodError, last_complete, parse_period
from monitor.report.render import file_stem, render_files, warm_up
from monitor.report.store import FORMATS, Stored, VersionTaken, publish
from monitor.report.versions import Change, Revision
from monitor.report.xlsx import write_xlsx

__all__ = [
    "FORMATS",
    "KINDS",
    "Change",
    "Figures",
    "FontMissing",
    "Kind",
    "Period",
    "PeriodError",
    "Report",
    "Revision",
    "Stored",
    "VersionTaken",
    "build_report",
    "file_stem",
    "last_complete",
    "parse_period",
    "publish",
    "render_files",
    "render_html",
    "report_json",
    "title",
    "warm_up",
    "write_pdf",
    "write_xlsx",
]
