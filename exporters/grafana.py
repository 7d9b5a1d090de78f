"""Put jiancha's dashboards, datasources and red cards into a running Grafana.

``push`` is idempotent: the folder is found by title (created if missing),
the two datasources are found by name (``jiancha-prometheus`` and
``jiancha-postgres``) and updated in place or created, and every dashboard is
posted to ``/api/dashboards/db`` with ``overwrite: true`` after its datasource
references are pointed at the uids of those datasources. Running it twice
changes nothing but the dashboards' version numbers.

``annotate`` posts red cards as annotations tagged ``jiancha``, ``red``, the
rule, the department and ``card:<id>``; a card whose ``card:<id>`` tag already
has an annotation is skipped, so reruns do not duplicate.

Both take a synchronous ``grafana_client.GrafanaApi``; call them from a plain
function (or ``trio.to_thread.run_sync``), never on an event loop.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "FOLDER",
    "POSTGRES_NAME",
    "PROMETHEUS_NAME",
    "PushResult",
    "annotate",
    "annotation_for",
    "postgres_datasource",
    "prometheus_datasource",
    "push",
    "resolve_inputs",
    "with_console",
]

FOLDER: Final = "电子监察"
PROMETHEUS_NAME: Final = "jiancha-prometheus"
POSTGRES_NAME: Final = "jiancha-postgres"
POSTGRES_TYPE: Final = "grafana-postgresql-datasource"
DEFAULT_UIDS: Final = {"DS_PROMETHEUS": PROMETHEUS_NAME, "DS_POSTGRES": POSTGRES_NAME}
"""The uids the dashboards reference (those of file provisioning), by push's input name."""

Json = dict[str, Any]


@dataclass
class PushResult:
    """What ``push`` did: the folder uid, datasource uids and actions, dashboard uids."""

    folder_uid: str
    folder_created: bool
    datasources: dict[str, str] = field(default_factory=dict)
    """Datasource name -> "created" or "updated"."""
    uids: dict[str, str] = field(default_factory=dict)
    """Input name (``DS_PROMETHEUS``, ``DS_POSTGRES``) -> datasource uid."""
    dashboards: dict[str, str] = field(default_factory=dict)
    """Dashboard file name -> the uid Grafana answered with."""


def prometheus_datasource(url: str) -> Json:
    """The body of the ``jiancha-prometheus`` datasource."""
    return {
        "name": PROMETHEUS_NAME,
        "uid": PROMETHEUS_NAME,
        "type": "prometheus",
        "access": "proxy",
        "url": url,
        "isDefault": False,
        "jsonData": {"httpMethod": "POST", "timeInterval": "15s"},
    }


def postgres_datasource(postgres: Mapping[str, Any]) -> Json:
    """The body of the ``jiancha-postgres`` datasource.

    ``postgres`` holds ``host`` (default 127.0.0.1), ``port`` (5432),
    ``database`` (jiancha), ``user`` (grafana: a login role granted
    jiancha_dashboard), ``sslmode`` (disable) and, optionally, ``password``
    (sent only as ``secureJsonData``).
    """
    host = str(postgres.get("host") or "127.0.0.1")
    port = int(postgres.get("port") or 5432)
    database = str(postgres.get("database") or "jiancha")
    body: Json = {
        "name": POSTGRES_NAME,
        "uid": POSTGRES_NAME,
        "type": POSTGRES_TYPE,
        "access": "proxy",
        "url": f"{host}:{port}",
        "user": str(postgres.get("user") or "grafana"),
        "database": database,
        "isDefault": False,
        "jsonData": {
            "database": database,
            "sslmode": str(postgres.get("sslmode") or "disable"),
            "postgresVersion": 1500,
            "timescaledb": False,
            "maxOpenConns": 5,
        },
    }
    password = postgres.get("password")
    if password:
        body["secureJsonData"] = {"password": str(password)}
    return body


def _find_folder(client: Any, title: str) -> tuple[str, bool]:
    """The uid of the folder titled ``title``, creating it; and whether it was created."""
    for folder in client.folder.get_all_folders() or []:
        if folder.get("title") == title:
            return str(folder["uid"]), False
    created = client.folder.create_folder(title)
    return str(created["uid"]), True


def _upsert_datasource(client: Any, body: Json) -> tuple[str, str]:
    """Create or update the datasource named ``body["name"]``: (uid, "created"|"updated")."""
    from grafana_client.client import GrafanaClientError  # here: `jiancha run` never loads it

    try:
        existing = client.datasource.get_datasource_by_name(body["name"])
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        created = client.datasource.create_datasource(body)
        ds = created.get("datasource") or {}
        return str(ds.get("uid") or body["uid"]), "created"
    uid = str(existing.get("uid") or body["uid"])
    update = {**body, "uid": uid}
    if "version" in existing:
        update["version"] = existing["version"]
    client.datasource.update_datasource_by_uid(uid, update)
    return uid, "updated"


def resolve_inputs(board: Mapping[str, Any], uids: Mapping[str, str]) -> Json:
    """``board`` with its datasource references pointed at ``uids``, ready for the API.

    The dashboards reference their datasources by the uids file provisioning gives
    them (``jiancha-prometheus``, ``jiancha-postgres``); a Grafana whose datasources
    of those names have other uids gets those. An older file's ``${DS_PROMETHEUS}`` /
    ``${DS_POSTGRES}`` inputs are filled the same way. The export-only keys
    (``__inputs``, ``__requires``, ``__elements``) go and ``id`` is cleared, so Grafana
    matches the dashboard by uid.
    """
    by_uid = {DEFAULT_UIDS[name]: uid for name, uid in uids.items() if name in DEFAULT_UIDS}
    text = json.dumps(board, ensure_ascii=False)
    for name, uid in uids.items():
        text = text.replace("${" + name + "}", uid)
    out: Json = _repoint(json.loads(text), by_uid)
    for key in ("__inputs", "__requires", "__elements"):
        out.pop(key, None)
    out["id"] = None
    return out


def with_console(board: Mapping[str, Any], url: str) -> Json:
    """``board`` with its constant ``console`` (the console's address) set to ``url``."""
    out: Json = json.loads(json.dumps(board, ensure_ascii=False))
    for variable in out.get("templating", {}).get("list", []):
        if variable.get("name") == "console" and variable.get("type") == "constant":
            variable["query"] = url.rstrip("/")
    return out


def _repoint(node: Any, by_uid: Mapping[str, str]) -> Any:
    """Datasource references (``{"type": ..., "uid": ...}``) moved to the uids found."""
    if isinstance(node, dict):
        out = {k: _repoint(v, by_uid) for k, v in node.items()}
        if "type" in out and out.get("uid") in by_uid and set(out) <= {"type", "uid"}:
            out["uid"] = by_uid[out["uid"]]
        return out
    if isinstance(node, list):
        return [_repoint(v, by_uid) for v in node]
    return node


def push(
    client: Any,
    dashboards: Mapping[str, Mapping[str, Any]],
    prometheus_url: str,
    postgres: Mapping[str, Any],
    folder: str = FOLDER,
    console: str | None = None,
) -> PushResult:
    """Install the folder, the two datasources and ``dashboards`` into Grafana; idempotent.

    With ``console``, case numbers link to the console at that address.
    """
    folder_uid, folder_created = _find_folder(client, folder)
    result = PushResult(folder_uid=folder_uid, folder_created=folder_created)
    for key, body in (
        ("DS_PROMETHEUS", prometheus_datasource(prometheus_url)),
        ("DS_POSTGRES", postgres_datasource(postgres)),
    ):
        uid, action = _upsert_datasource(client, body)
        result.uids[key] = uid
        result.datasources[body["name"]] = action
    for name, board in dashboards.items():
        payload = {
            "dashboard": resolve_inputs(
                board if console is None else with_console(board, console), result.uids
            ),
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "jiancha grafana push",
        }
        answer = client.dashboard.update_dashboard(payload)
        result.dashboards[name] = str((answer or {}).get("uid") or board.get("uid") or "")
    return result


def _millis(moment: Any) -> int:
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return int(moment.timestamp() * 1000)
    return int(moment)


def annotation_for(card: Mapping[str, Any]) -> Json:
    """The annotation body for a red card (``id``, ``case_id``, ``rule``, ``department``,
    ``issued_at``; optional ``matter``, ``window``)."""
    rule = str(card.get("rule") or "")
    department = str(card.get("department") or "")
    text = f"红牌：办件 {card['case_id']} 触发规则 {rule}"
    where = "，".join(str(v) for v in (department, card.get("window")) if v)
    if where:
        text += f"（{where}）"
    if card.get("matter"):
        text += f"，事项：{card['matter']}"
    tags = ["jiancha", "red", rule, department, f"card:{card['id']}"]
    return {"time": _millis(card["issued_at"]), "tags": [t for t in tags if t], "text": text}


def annotate(client: Any, cards: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """Post the red ones of ``cards`` as annotations: (added, already there).

    A card counts as already there when Grafana has an annotation tagged
    ``card:<id>``; other levels are ignored.
    """
    added = skipped = 0
    for card in cards:
        if card.get("level", "red") != "red":
            continue
        body = annotation_for(card)
        found = client.annotations.find_annotations(
            tags=[f"card:{card['id']}"], ann_type="annotation", limit=1
        )
        if found:
            skipped += 1
            continue
        client.annotations.add_annotation(
            time_from=body["time"], tags=body["tags"], text=body["text"]
        )
        added += 1
    return added, skipped
