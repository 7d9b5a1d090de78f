"""``jiancha.reports``: each version of a bulletin, kept with its documents (migration 0015).

``publish`` stores a bulletin only when its figures differ from the latest
stored version's: the same figures again return that version (idempotent, so
a restart or a second run of the schedule stores nothing); different figures
(late events after the period closed) make the next version, a revision that
lists what changed, in the table and in the documents. Nothing is ever
overwritten. The documents are rendered in a child process (a PDF takes
seconds of pure Python and hundreds of MiB; the daemon's lease, heartbeats
and live path must not wait on it, nor keep the memory) and stored beside
the row; the unique (kind, period, scope, version) is the last line
of defence against two writers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from monitor.log import get_logger
from monitor.report.apart import render_apart
from monitor.report.jsondoc import report_json
from monitor.report.versions import Change, Revision, changes, digest, flatten

if TYPE_CHECKING:
    from monitor.db import Connection
    from monitor.report.model import Report

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "Stored",
    "VersionTaken",
    "publish",
]

FORMATS: Final = ("html", "xlsx", "pdf", "json")
MEDIA_TYPES: Final = {
    "html": "text/html; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "json": "application/json",
}
log = get_logger(__name__)

_LATEST = """
SELECT id, version, digest, content, generated_at FROM jiancha.reports
WHERE kind = $1 AND period = $2 AND scope = $3 ORDER BY version DESC LIMIT 1
"""
_INSERT = """
INSERT INTO jiancha.reports (kind, period, scope, version, generated_at, digest, content,
                             changed, files)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (kind, period, scope, version) DO NOTHING
RETURNING id
"""
_FILE = """
INSERT INTO jiancha.report_files (report_id, format, name, content) VALUES ($1, $2, $3, $4)
"""


@dataclass(frozen=True)
class Stored:
    """A stored version; ``new`` False when the figures were already stored as it."""

    id: int
    kind: str
    period: str
    scope: str  # '' for the whole centre
    version: int
    new: bool
    changed: tuple[Change, ...] = ()
    report: Report | None = None  # the bulletin as stored (when this call built it)


def _content(row: Any) -> dict[str, Any]:
    return dict(row["content"])


async def publish(
    conn: Connection,
    r: Report,
    *,
    lang: str = "zh",
    formats: Sequence[str] = FORMATS,
    render: Callable[[Report], dict[str, tuple[str, bytes]]] | None = None,
    on_stored: Callable[[Connection, Stored], Awaitable[None]] | None = None,
) -> Stored:
    """Store ``r`` as the next version of its period and scope unless its figures are stored.

    ``render`` makes the documents (default: ``render_files`` in a child process, so the
    daemon's live path keeps its GIL and its memory);
    ``on_stored`` runs in the storing transaction (the deliveries: both or neither).
    """
    kind, period, scope = r.period.kind, r.period.key, r.department or ""
    flat = flatten(report_json(r))
    fingerprint = digest(flat)
    latest = await conn.fetchrow(_LATEST, kind, period, scope)
    if latest is not None and latest["digest"] == fingerprint:
        return Stored(int(latest["id"]), kind, period, scope, int(latest["version"]), False)
    version = 1 if latest is None else int(latest["version"]) + 1
    changed: tuple[Change, ...] = ()
    if latest is not None:
        before = _content(latest)
        changed = changes(flatten(before), flat)
        r = replace(r, revision=Revision(version, before.get("generated_at"), changed))
    if render is None:
        files = await render_apart(r, formats, lang)
    else:
        files = render(r)
    listed = {f: {"name": name, "bytes": len(data)} for f, (name, data) in files.items()}
    changed_json = [{"key": c.key, "was": c.was, "now": c.now} for c in changed]
    async with conn.transaction():
        new_id = await conn.fetchval(
            _INSERT, kind, period, scope, version, r.generated_at, fingerprint,
            report_json(r), changed_json, listed,
        )  # fmt: skip
        if new_id is None:  # another writer stored this version meanwhile: theirs stands
            raise VersionTaken(kind, period, scope, version)
        for fmt, (name, data) in files.items():
            await conn.execute(_FILE, new_id, fmt, name, data)
        stored = Stored(int(new_id), kind, period, scope, version, True, changed, r)
        if on_stored is not None:
            await on_stored(conn, stored)
    log.info("report.stored", kind=kind, period=period, scope=scope or "centre",
             version=version, changed=len(changed), id=int(new_id))  # fmt: skip
    return stored


class VersionTaken(RuntimeError):
    """Another writer stored the same version first; running again compares with it."""

    def __init__(self, kind: str, period: str, scope: str, version: int) -> None:
        super().__init__(f"report {kind} {period} {scope or 'centre'} v{version} already stored")
