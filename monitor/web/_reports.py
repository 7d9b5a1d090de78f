"""Bulletins in the console: the list, the page the robots' messages link to, its documents.

``/reports`` lists the latest version of each stored bulletin, newest period
first, by kind; ``/reports/{id}`` shows one stored version (``jiancha.reports``): its title,
headline figures, whether it is a revision and what that changed, and the
documents to download; ``/reports/{id}/{format}`` serves one of them.
Officers and admins see every bulletin; a department head their
departments' own; window heads none (a bulletin names every window).
"""

from __future__ import annotations

import urllib.parse
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from monitor.accounts import User
from monitor.report.html import KIND_TITLES
from monitor.report.period import parse_period
from monitor.report.versions import label, shown
from monitor.web._core import (
    SECURITY_HEADERS,
    Refusal,
    console,
    lang_of,
    page,
    render,
    signed_in,
)

__all__ = ["report_file", "report_list", "report_page"]

_FORMATS: Final = ("pdf", "xlsx", "html", "json")
_MEDIA: Final = {
    "html": "text/html; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "json": "application/json",
}
_ROW = """
SELECT id, kind, period, scope, version, generated_at, content, changed, files
FROM jiancha.reports WHERE id = $1
"""
_VERSIONS = """
SELECT id, version, generated_at FROM jiancha.reports
WHERE kind = $1 AND period = $2 AND scope = $3 ORDER BY version
"""

# The latest version of each bulletin the user may see, newest period first.
_LIST = """
SELECT * FROM (
  SELECT DISTINCT ON (kind, period, scope) id, kind, period, scope, version, generated_at,
         files, content->'figures' AS figures
  FROM jiancha.reports
  WHERE ($1::text IS NULL OR kind = $1) AND ($2::text[] IS NULL OR scope = ANY($2))
  ORDER BY kind, period, scope, version DESC
) latest
ORDER BY period DESC, kind, scope
LIMIT $3
"""
LIST_LIMIT: Final = 200
_KINDS: Final = ("daily", "weekly", "monthly", "yearly")


def _sees(user: User, scope: str) -> bool:
    if user.has("officer") or user.has("admin"):
        return True
    return user.has("department_head") and scope != "" and scope in user.departments


def _report_id(request: Request) -> int:
    raw = request.path_params["report_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Refusal(404, "e404")
    return int(raw)


async def _row(request: Request) -> tuple[Any, list[Any]]:
    user = await signed_in(request)
    async with console(request).pool.connection() as conn:
        row = await conn.fetchrow(_ROW, _report_id(request))
        if row is None:
            raise Refusal(404, "e404")
        if not _sees(user, row["scope"]):
            raise Refusal(403, "e403")
        versions = await conn.fetch(_VERSIONS, row["kind"], row["period"], row["scope"])
    return row, list(versions)


@page
async def report_page(request: Request) -> Response:
    row, versions = await _row(request)
    lang = lang_of(request)
    doc = row["content"]
    period = parse_period(row["kind"], row["period"])
    zh, en = KIND_TITLES[row["kind"]]
    who = doc.get("centre", "") + (doc.get("department") or "")
    heading = (f"{who}: e-supervision {en}, {period.label('en')}" if lang == "en"
               else f"{who} {period.label()} 政务服务电子监察{zh}")  # fmt: skip
    changed = [{"label": label(c["key"], lang), "was": shown(c["was"]), "now": shown(c["now"])}
               for c in row["changed"]]  # fmt: skip
    files = [(f, row["files"][f]) for f in _FORMATS if f in row["files"]]
    return render(request, "report.html", row=row, heading=heading, f=doc["figures"],
                  changed=changed, files=files, versions=versions, pct=_pct)  # fmt: skip


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


@page
async def report_list(request: Request) -> Response:
    user = await signed_in(request)
    if user.has("officer") or user.has("admin"):
        scopes = None
    elif user.has("department_head"):
        scopes = [d for d in user.departments if d]
    else:
        raise Refusal(403, "e403")  # a bulletin names every window: not a window head's
    kind = request.query_params.get("kind") or None
    if kind is not None and kind not in _KINDS:
        raise Refusal(400, "e400", "kind: " + "、".join(_KINDS))
    async with console(request).pool.connection() as conn:
        rows = await conn.fetch(_LIST, kind, scopes, LIST_LIMIT + 1)
    lang = lang_of(request)
    kinds = [(k, KIND_TITLES[k][0 if lang == "zh" else 1]) for k in _KINDS]
    return render(request, "reports.html", rows=rows[:LIST_LIMIT], more=len(rows) > LIST_LIMIT,
                  kinds=kinds, kind=kind, titles=dict(kinds), pct=_pct,
                  label=lambda r: parse_period(r["kind"], r["period"]).label(lang))  # fmt: skip


@page
async def report_file(request: Request) -> Response:
    row, _ = await _row(request)
    fmt = request.path_params["format"]
    if fmt not in _FORMATS:
        raise Refusal(404, "e404")
    async with console(request).pool.connection() as conn:
        found = await conn.fetchrow(
            "SELECT name, content FROM jiancha.report_files WHERE report_id = $1 AND format = $2",
            row["id"], fmt,
        )  # fmt: skip
    if found is None:
        raise Refusal(404, "e404")
    name = str(found["name"])
    disposition = "inline" if fmt in ("pdf", "html") else "attachment"
    headers = {
        **SECURITY_HEADERS,
        # RFC 6266/5987: a department's Chinese name in the file name survives every browser
        "Content-Disposition": f'{disposition}; filename="report.{fmt}"; '
        f"filename*=UTF-8''{urllib.parse.quote(name)}",
    }
    if fmt == "html":  # the bulletin's own page: no scripts, its inline styles and images
        headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
        )
    return Response(bytes(found["content"]), media_type=_MEDIA[fmt], headers=headers)
