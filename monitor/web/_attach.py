"""Appeal attachments: a photo of a paper record (or a PDF), kept in the database.

Only JPEG, PNG and PDF are taken, told apart by their first bytes rather
than by what the browser claims; 5 MiB at most (the request is refused by
its Content-Length before it is read). The row goes in with the appeal's
ledger step, in one transaction, and the step's detail names it. Anyone who
may read the card may open it; it is served with its own type, nosniff and
a sandboxing CSP, a PDF as a download.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from monitor.web._core import Refusal, console, page, signed_in
from monitor.web._scope import sees

if TYPE_CHECKING:
    from monitor.db import Connection

__all__ = ["ATTACHMENT_LIMIT", "Upload", "attachment", "check_length", "read_upload", "store"]

ATTACHMENT_LIMIT: Final = 5 * 1024 * 1024
_FORM_SLACK: Final = 64 * 1024  # the form's other fields and multipart framing
_MAGIC: Final = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"),
                 (b"%PDF-", "application/pdf"))  # fmt: skip


@dataclass(frozen=True)
class Upload:
    name: str
    media_type: str
    data: bytes

    @property
    def sha256(self) -> bytes:
        return hashlib.sha256(self.data).digest()


def sniff(data: bytes) -> str | None:
    """The media type of ``data`` by its first bytes, if it is one the console takes."""
    return next((kind for magic, kind in _MAGIC if data.startswith(magic)), None)


def check_length(request: Request) -> None:
    """Refuse an upload too large, or of unknown size, before reading a byte of it."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise Refusal(411, "e400")
    if int(length) > ATTACHMENT_LIMIT + _FORM_SLACK:
        raise Refusal(413, "e413")


async def read_upload(request: Request) -> Upload | None:
    """The form's ``attachment``, checked; None when no file was chosen."""
    field = (await request.form()).get("attachment")
    if not isinstance(field, UploadFile) or not field.filename:
        return None
    data = await field.read(ATTACHMENT_LIMIT + 1)
    if not data:
        return None
    if len(data) > ATTACHMENT_LIMIT:
        raise Refusal(413, "e413")
    kind = sniff(data)
    if kind is None:
        raise Refusal(415, "e415")
    name = field.filename.replace("\\", "/").rsplit("/", 1)[-1].strip()[:200] or "attachment"
    return Upload(name, kind, data)


async def store(conn: Connection, card_id: int, upload: Upload, username: str,
                now: dt.datetime) -> dict[str, Any]:  # fmt: skip
    """Insert the attachment (inside the caller's transaction); what the ledger step records."""
    found = await conn.fetchval(
        "INSERT INTO jiancha.attachments (card_id, name, media_type, size, sha256, data,"
        " uploaded_by, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        card_id, upload.name, upload.media_type, len(upload.data), upload.sha256, upload.data,
        username, now,
    )  # fmt: skip
    return {"id": int(found), "name": upload.name, "media_type": upload.media_type,
            "size": len(upload.data), "sha256": upload.sha256.hex()}  # fmt: skip


@page
async def attachment(request: Request) -> Response:
    user = await signed_in(request)
    raw = request.path_params["attachment_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Refusal(404, "e404")
    async with console(request).pool.connection() as conn:
        row = await conn.fetchrow(
            'SELECT a.name, a.media_type, a.data, c."window", c.department'
            " FROM jiancha.attachments a JOIN jiancha.cards c ON c.id = a.card_id"
            " WHERE a.id = $1", int(raw))  # fmt: skip
    if row is None:
        raise Refusal(404, "e404")
    if not sees(user, row["window"], row["department"]):
        raise Refusal(403, "e403")
    inline = row["media_type"].startswith("image/")
    disposition = f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(row['name'])}"
    return Response(bytes(row["data"]), media_type=row["media_type"], headers={
        "Content-Disposition": disposition, "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox", "Cache-Control": "no-store",
    })  # fmt: skip
