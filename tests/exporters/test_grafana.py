"""`exporters.grafana` and ``jiancha grafana push`` against a small fake Grafana.

grafana-client is synchronous, so the fake is an ``http.server`` in a thread
(a trio receiver would need the client in ``trio.to_thread``). It keeps just
enough state for the endpoints used (folders, datasources by name and uid,
dashboards, annotations) and records every request for the checks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from grafana_client.api import GrafanaApi

from dashboards.build import dashboards
from exporters import grafana
from monitor.cli import grafana as grafana_cli

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "glsa_test_token"


class FakeGrafana:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.folders: list[dict[str, Any]] = []
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.annotations: list[dict[str, Any]] = []

    def handle(self, method: str, target: str, body: Any) -> tuple[int, Any]:
        url = urlsplit(target)
        path, query = url.path, parse_qs(url.query)
        if method == "GET" and path == "/api/folders":
            return 200, self.folders
        if method == "POST" and path == "/api/folders":
            folder = {"id": len(self.folders) + 1, "uid": "f-jiancha", "title": body["title"]}
            self.folders.append(folder)
            return 200, folder
        if method == "GET" and path.startswith("/api/datasources/name/"):
            ds = self.datasources.get(unquote(path.rsplit("/", 1)[1]))
            return (200, ds) if ds else (404, {"message": "Data source not found"})
        if method == "POST" and path == "/api/datasources":
            ds = {**body, "id": len(self.datasources) + 1, "version": 1}
            self.datasources[body["name"]] = ds
            return 200, {"datasource": ds, "id": ds["id"], "message": "Datasource added"}
        if method == "PUT" and path.startswith("/api/datasources/uid/"):
            uid = path.rsplit("/", 1)[1]
            old = next(d for d in self.datasources.values() if d["uid"] == uid)
            ds = {**body, "id": old["id"], "version": old["version"] + 1}
            self.datasources[body["name"]] = ds
            return 200, {"datasource": ds, "message": "Datasource updated"}
        if method == "POST" and path == "/api/dashboards/db":
            board = body["dashboard"]
            self.dashboards[board["uid"]] = body
            return 200, {"uid": board["uid"], "status": "success", "version": 1}
        if method == "GET" and path == "/api/annotations":
            tags = set(query.get("tags", []))
            return 200, [a for a in self.annotations if tags <= set(a["tags"])]
        if method == "POST" and path == "/api/annotations":
            self.annotations.append(body)
            return 200, {"id": len(self.annotations), "message": "Annotation added"}
        return 404, {"message": f"not faked: {method} {path}"}


@pytest.fixture
def fake() -> Iterator[tuple[FakeGrafana, str]]:
    state = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            state.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "auth": self.headers.get("Authorization"),
                    "json": body,
                }
            )
            status, answer = state.handle(self.command, self.path, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _client(url: str) -> GrafanaApi:
    return GrafanaApi.from_url(url, credential=TOKEN, timeout=5)


PG = {"host": "db.local", "port": 5433, "user": "jiancha_reader", "password": "s3cret"}


def _calls(state: FakeGrafana) -> list[tuple[str, str]]:
    return [(r["method"], urlsplit(r["path"]).path) for r in state.requests]


def test_push_creates_then_updates(fake: tuple[FakeGrafana, str]) -> None:
    state, url = fake
    boards = dashboards()
    first = grafana.push(_client(url), boards, "http://prom:9090", PG)

    assert first.folder_created and first.folder_uid == "f-jiancha"
    assert first.datasources == {"jiancha-prometheus": "created", "jiancha-postgres": "created"}
    assert first.uids == {"DS_PROMETHEUS": "jiancha-prometheus", "DS_POSTGRES": "jiancha-postgres"}
    assert set(first.uids) == set(grafana_cli.FILLED_INPUTS)  # what push --check accepts
    assert _calls(state) == [
        ("GET", "/api/folders"),
        ("POST", "/api/folders"),
        ("GET", "/api/datasources/name/jiancha-prometheus"),
        ("POST", "/api/datasources"),
        ("GET", "/api/datasources/name/jiancha-postgres"),
        ("POST", "/api/datasources"),
        *[("POST", "/api/dashboards/db")] * len(boards),
    ]
    assert all(r["auth"] == f"Bearer {TOKEN}" for r in state.requests)
    assert state.requests[1]["json"] == {"title": "电子监察"}

    prom = state.requests[3]["json"]
    assert prom["type"] == "prometheus" and prom["url"] == "http://prom:9090"
    pg = state.requests[5]["json"]
    assert pg["type"] == "grafana-postgresql-datasource"
    assert pg["url"] == "db.local:5433" and pg["user"] == "jiancha_reader"
    assert pg["jsonData"]["database"] == "jiancha"
    assert pg["secureJsonData"] == {"password": "s3cret"}

    posted = [r["json"] for r in state.requests[6:]]
    assert {p["dashboard"]["uid"] for p in posted} == {b["uid"] for b in boards.values()}
    for payload in posted:
        assert payload["overwrite"] is True
        assert payload["folderUid"] == "f-jiancha"
        board = payload["dashboard"]
        text = json.dumps(board)
        assert "${DS_" not in text and "__inputs" not in board
        assert board["id"] is None
        assert "jiancha-prometheus" in text or "jiancha-postgres" in text
    # Every datasource reference now names one of the two datasources.
    refs = {
        (p["datasource"]["type"], p["datasource"]["uid"])
        for payload in posted
        for p in payload["dashboard"]["panels"]
        if isinstance(p.get("datasource"), dict) and "uid" in p["datasource"]
    }
    assert refs <= {
        ("prometheus", "jiancha-prometheus"),
        ("grafana-postgresql-datasource", "jiancha-postgres"),
        ("datasource", "grafana"),
        ("datasource", "-- Grafana --"),
    }

    # Second run: nothing new is created, both datasources are updated in place.
    state.requests.clear()
    second = grafana.push(_client(url), boards, "http://prom:9091", PG)
    assert not second.folder_created and second.folder_uid == "f-jiancha"
    assert second.datasources == {"jiancha-prometheus": "updated", "jiancha-postgres": "updated"}
    assert _calls(state) == [
        ("GET", "/api/folders"),
        ("GET", "/api/datasources/name/jiancha-prometheus"),
        ("PUT", "/api/datasources/uid/jiancha-prometheus"),
        ("GET", "/api/datasources/name/jiancha-postgres"),
        ("PUT", "/api/datasources/uid/jiancha-postgres"),
        *[("POST", "/api/dashboards/db")] * len(boards),
    ]
    assert state.requests[2]["json"]["url"] == "http://prom:9091"
    assert state.requests[2]["json"]["version"] == 1
    assert len(state.folders) == 1 and len(state.datasources) == 2
    assert len(state.dashboards) == len(boards)


def test_push_points_the_dashboards_at_existing_datasources_and_the_console(
    fake: tuple[FakeGrafana, str],
) -> None:
    """A Grafana whose datasource of that name has another uid: the references follow it."""
    state, url = fake
    state.datasources["jiancha-postgres"] = {"name": "jiancha-postgres", "uid": "pg-7",
                                             "id": 9, "version": 3}  # fmt: skip
    grafana.push(_client(url), dashboards(), "http://prom:9090", PG,
                 console="https://jiancha.example.gov.cn/")  # fmt: skip
    window = state.dashboards["jiancha-window"]["dashboard"]
    text = json.dumps(window, ensure_ascii=False)
    assert '"uid": "pg-7"' in text and '"uid": "jiancha-postgres"' not in text
    (console,) = [v for v in window["templating"]["list"] if v["name"] == "console"]
    assert console["query"] == "https://jiancha.example.gov.cn"


def test_annotate_posts_red_cards_once(fake: tuple[FakeGrafana, str]) -> None:
    state, url = fake
    issued = dt.datetime(2024, 3, 4, 2, 0, tzinfo=dt.UTC)
    cards = [
        {"id": 7, "case_id": "C-001", "rule": "decision_overdue", "level": "red",
         "department": "住建局", "window": "3号窗口", "issued_at": issued},
        {"id": 8, "case_id": "C-002", "rule": "acceptance_late", "level": "yellow",
         "department": "住建局", "issued_at": issued},
    ]  # fmt: skip
    assert grafana.annotate(_client(url), cards) == (1, 0)
    assert _calls(state) == [("GET", "/api/annotations"), ("POST", "/api/annotations")]
    assert parse_qs(urlsplit(state.requests[0]["path"]).query)["tags"] == ["card:7"]
    body = state.requests[1]["json"]
    assert body["time"] == int(issued.timestamp() * 1000)
    assert body["tags"] == ["jiancha", "red", "decision_overdue", "住建局", "card:7"]
    assert "C-001" in body["text"] and "decision_overdue" in body["text"]
    assert body["text"].startswith("红牌")
    assert state.requests[1]["auth"] == f"Bearer {TOKEN}"

    state.requests.clear()
    assert grafana.annotate(_client(url), cards) == (0, 1)
    assert _calls(state) == [("GET", "/api/annotations")]
    assert len(state.annotations) == 1


def _run_cli(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="jiancha")
    sub = parser.add_subparsers(dest="command", required=True)
    grafana_cli.register(sub)
    args = parser.parse_args(argv)
    out = io.StringIO()
    code: int = args.func(args, out)
    return code, out.getvalue()


def test_cli_push_reads_token_from_file(
    fake: tuple[FakeGrafana, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, url = fake
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "grafana-token").write_text(TOKEN + "\n")
    (tmp_path / "pg.password").write_text("pw\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    argv = ["grafana", "push", "--url", url, "--token-file", "grafana-token", "--json",
            "--postgres-password-file", str(tmp_path / "pg.password")]  # fmt: skip
    code, out = _run_cli(argv)
    assert code == 0
    doc = json.loads(out)
    assert doc["folder_uid"] == "f-jiancha"
    assert set(doc["dashboards"]) == set(dashboards())
    assert all(r["auth"] == f"Bearer {TOKEN}" for r in state.requests)
    assert state.datasources["jiancha-postgres"]["secureJsonData"] == {"password": "pw"}
    assert state.datasources["jiancha-prometheus"]["url"] == "http://127.0.0.1:9090"


def test_cli_errors(tmp_path: Path) -> None:
    from monitor.cli import CommandFailed, UsageError

    with pytest.raises(UsageError):
        _run_cli(["grafana", "push", "--url", "http://x", "--token-file", str(tmp_path / "no")])
    token = tmp_path / "token"
    token.write_text(TOKEN)
    with pytest.raises(CommandFailed) as refused:  # nothing listens on port 9
        _run_cli(["grafana", "push", "--url", "http://admin:pw@127.0.0.1:9", "--token-file",
                  str(token), "--timeout", "2"])  # fmt: skip
    # the cause an operator can act on, the address without its password, and not
    # urllib3's three nested exceptions ("HTTPConnectionPool(...): Max retries exceeded")
    assert str(refused.value) == (
        "无法连接 Grafana（http://admin:***@127.0.0.1:9）："
        "连接被拒绝（地址或端口不对，或 Grafana 没有运行）"
    )
    with pytest.raises(CommandFailed) as unknown:
        _run_cli(["grafana", "push", "--url", "http://no-such-host.invalid:3000", "--token-file",
                  str(token), "--timeout", "2"])  # fmt: skip
    assert str(unknown.value).endswith(
        "：无法解析主机名（--url 中的主机名拼写有误，或本机 DNS 不可用）"
    )
    with pytest.raises(SystemExit):  # no token on the command line at all
        _run_cli(["grafana", "push", "--url", "http://x", "--token", TOKEN])


def _board(uid: str | None, title: str | None, *inputs: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"panels": [{"datasource": {"uid": "${" + i + "}"}} for i in inputs]}
    if uid is not None:
        doc["uid"] = uid
    if title is not None:
        doc["title"] = title
    return doc


def test_check_lists_the_packaged_dashboards_without_grafana(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No --url, --token-file or --dashboards: the shipped JSON, the same as build.py makes."""
    monkeypatch.setenv("JIANCHA_LANG", "zh")
    code, out = _run_cli(["grafana", "push", "--check"])
    assert code == 0, out
    for name, board in dashboards().items():
        assert f"{name}  uid={board['uid']}  标题={board['title']}" in out
    assert "jiancha-postgres (${DS_POSTGRES}) -> 127.0.0.1:5432/jiancha (用户 grafana)" in out
    assert out.rstrip().endswith("检查通过（未连接 Grafana）")

    monkeypatch.setenv("JIANCHA_LANG", "en")
    code, out = _run_cli(["grafana", "push", "--check", "--json", "--postgres-host", "db.local"])
    assert code == 0
    doc = json.loads(out)
    assert doc["valid"] is True and doc["problems"] == [] and doc["folder"] == "电子监察"
    assert {b["file"]: b["uid"] for b in doc["dashboards"]} == {
        name: board["uid"] for name, board in dashboards().items()
    }
    assert doc["datasources"]["jiancha-postgres"]["url"] == "db.local:5432"
    # push sends exactly these documents
    _, boards, problems = grafana_cli.load_dashboards(None)
    assert problems == [] and {b.name: b.doc for b in boards} == dashboards()


def test_check_reports_broken_dashboards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIANCHA_LANG", "zh")
    (tmp_path / "a-broken.json").write_text('{"uid": "a", "title": "A",\n', "utf-8")
    (tmp_path / "b-no-uid.json").write_text(json.dumps(_board(None, "B", "DS_PROMETHEUS")))
    (tmp_path / "c-loki.json").write_text(json.dumps(_board("c", "C", "DS_LOKI")))
    (tmp_path / "d-same.json").write_text(json.dumps(_board("c", "", "DS_POSTGRES")))
    (tmp_path / "e-list.json").write_text("[]")
    code, out = _run_cli(["grafana", "push", "--check", "--dashboards", str(tmp_path)])
    assert code == 1
    for message in (
        "a-broken.json: 不是有效的 JSON（第 2 行",
        "b-no-uid.json: 缺少 uid",
        "c-loki.json: 数据源占位符 ${DS_LOKI} 无法填充（push 只填 DS_PROMETHEUS、DS_POSTGRES）",
        "d-same.json: 缺少 title",
        "d-same.json: uid c 与 c-loki.json 重复",
        "e-list.json: 顶层不是 JSON 对象",
    ):
        assert f"  - {message}" in out, out
    assert out.rstrip().endswith("检查未通过，不可推送")

    monkeypatch.setenv("JIANCHA_LANG", "en")
    code, out = _run_cli(["grafana", "push", "--check", "--json", "--dashboards", str(tmp_path)])
    doc = json.loads(out)
    assert code == 1 and doc["valid"] is False
    by_file = {b["file"]: b for b in doc["dashboards"]}
    assert by_file["a-broken.json"]["uid"] is None
    assert by_file["b-no-uid.json"]["problems"] == ["no uid"]
    assert by_file["c-loki.json"]["inputs"] == ["DS_LOKI"]
    assert "datasource placeholder ${DS_LOKI} is not one push fills" in " ".join(doc["problems"])

    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = _run_cli(["grafana", "push", "--check", "--dashboards", str(empty)])
    assert code == 1 and f"no dashboard JSON files in {empty}" in out


def test_push_needs_url_and_token_file_unless_check(
    fake: tuple[FakeGrafana, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from monitor.cli import UsageError, main

    monkeypatch.setenv("JIANCHA_LANG", "en")
    with pytest.raises(UsageError, match="push needs --url and --token-file"):
        _run_cli(["grafana", "push"])
    assert main(["grafana", "push", "--token-file", "t"]) == 2  # what the console script exits
    assert "push needs --url (--check validates without Grafana)" in capsys.readouterr().err
    assert main(["grafana", "push", "--check"]) == 0

    # invalid dashboards are refused before Grafana is contacted
    state, url = fake
    token = tmp_path / "token"
    token.write_text(TOKEN)
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "x.json").write_text(json.dumps(_board(None, "X")))
    argv = ["grafana", "push", "--url", url, "--token-file", str(token), "--dashboards",
            str(tmp_path / "boards")]  # fmt: skip
    with pytest.raises(UsageError, match=r"invalid dashboards, nothing pushed: x\.json: no uid"):
        _run_cli(argv)
    assert state.requests == []


def _load_yaml(path: Path) -> Any:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(path.read_text("utf-8"))


def test_provisioning_files() -> None:
    base = ROOT / "deploy" / "grafana" / "provisioning"
    ds_text = (base / "datasources" / "jiancha.yml").read_text("utf-8")
    db_text = (base / "dashboards" / "jiancha.yml").read_text("utf-8")
    # Checks that hold without a YAML parser.
    assert "apiVersion: 1" in ds_text and "apiVersion: 1" in db_text
    for needle in (
        "name: jiancha-prometheus",
        "url: http://127.0.0.1:9090",
        "name: jiancha-postgres",
        "type: grafana-postgresql-datasource",
        "user: grafana",
        "password: $__file{/etc/grafana/jiancha-pg.password}",
    ):
        assert needle in ds_text
    for needle in ("type: file", "folder: 电子监察", "path: /var/lib/jiancha/dashboards"):
        assert needle in db_text
    try:
        import yaml  # noqa: F401
    except ImportError:
        return
    ds = _load_yaml(base / "datasources" / "jiancha.yml")
    by_name = {d["name"]: d for d in ds["datasources"]}
    assert by_name["jiancha-prometheus"]["uid"] == "jiancha-prometheus"
    pg = by_name["jiancha-postgres"]
    assert pg["jsonData"]["database"] == "jiancha"
    assert pg["secureJsonData"]["password"].startswith("$__file{")
    prov = _load_yaml(base / "dashboards" / "jiancha.yml")
    (provider,) = prov["providers"]
    assert provider["folder"] == "电子监察"
    assert provider["options"]["path"] == "/var/lib/jiancha/dashboards"


def test_cli_annotate_reads_red_cards_from_the_ledger(
    fake: tuple[FakeGrafana, str], sync_dsn: str, tmp_path: Path
) -> None:
    """The ledger's red cards (from a real database, made by the engine) become annotations."""
    import trio

    from monitor import db
    from monitor.calendar import load_calendar
    from monitor.evaluator import Evaluator
    from monitor.rules.load import load_rules
    from tests.cardkit import ACCEPTED_FEB8, Driver, z
    from tests.sourcekit import write

    async def seed() -> None:
        async with db.open_loop(), await db.connect(sync_dsn) as conn:
            await write(conn, ACCEPTED_FEB8)
            d = Driver(conn, Evaluator(load_rules("cards"), load_calendar("cn")))
            await d.start(z("2024-02-08T03:00:00"))
            await d.ingest(z("2024-02-08T03:00:00"))
            await d.run_until(z("2024-03-20T00:00:00"), z("2024-02-08T03:00:00"))

    trio.run(seed)
    state, url = fake
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    argv = ["grafana", "annotate", "--url", url, "--token-file", str(token), "--dsn", sync_dsn,
            "--json"]  # fmt: skip
    code, out = _run_cli(argv)
    assert code == 0 and json.loads(out) == {"added": 2, "skipped": 0}  # decision + statutory
    assert {a["tags"][2] for a in state.annotations} == {"decision_time", "statutory_time"}
    assert _run_cli(argv)[1].strip() == json.dumps({"added": 0, "skipped": 2})
