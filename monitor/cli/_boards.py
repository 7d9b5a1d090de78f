"""The dashboards ``jiancha grafana push`` installs, read and checked before Grafana is asked.

Push and ``push --check`` load them through `load_dashboards`: valid JSON
objects with a Grafana uid and a title, unique uids, and only the
datasource placeholders push fills.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from monitor.i18n import h

__all__ = ["FILLED_INPUTS", "Board", "load_dashboards"]

# The ``${NAME}`` inputs exporters.grafana.push fills with its datasources' uids (the keys
# of PushResult.uids); a dashboard that uses any other is pushed with it unresolved.
FILLED_INPUTS: Final = ("DS_PROMETHEUS", "DS_POSTGRES")
_INPUT = re.compile(r"\$\{(DS_[A-Za-z0-9_]*)\}")
_UID = re.compile(r"[A-Za-z0-9_-]{1,40}")  # what Grafana accepts as a dashboard uid


@dataclass
class Board:
    """One dashboard file as push reads it, and what is wrong with it."""

    name: str
    doc: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def uid(self) -> str:
        return str((self.doc or {}).get("uid") or "")

    @property
    def title(self) -> str:
        return str((self.doc or {}).get("title") or "")

    @property
    def inputs(self) -> list[str]:
        """The ``${DS_...}`` placeholders the dashboard uses."""
        text = json.dumps(self.doc, ensure_ascii=False) if self.doc is not None else ""
        return sorted(set(_INPUT.findall(text)))


def _read_board(path: Path) -> Board:

    board = Board(path.name)
    try:
        doc = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        board.problems.append(h("无法读取：", "cannot read it: ") + (exc.strerror or str(exc)))
        return board
    except UnicodeDecodeError as exc:
        board.problems.append(h("不是 UTF-8 文本：", "not UTF-8 text: ") + str(exc))
        return board
    except json.JSONDecodeError as exc:
        board.problems.append(
            h(
                f"不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列：{exc.msg}）",
                f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            )
        )
        return board
    if not isinstance(doc, dict):
        board.problems.append(h("顶层不是 JSON 对象", "not a JSON object"))
        return board
    board.doc = doc
    uid = doc.get("uid")
    if not isinstance(uid, str) or not uid:
        board.problems.append(h("缺少 uid", "no uid"))
    elif not _UID.fullmatch(uid):
        board.problems.append(
            h(
                f"uid {uid!r} 不符合 Grafana 的要求（至多 40 个字母、数字、- 或 _）",
                f"uid {uid!r} is not a Grafana uid (up to 40 letters, digits, - or _)",
            )
        )
    title = doc.get("title")
    if not isinstance(title, str) or not title.strip():
        board.problems.append(h("缺少 title", "no title"))
    known = h("、", ", ").join(FILLED_INPUTS)
    for name in board.inputs:
        if name not in FILLED_INPUTS:
            board.problems.append(
                h(
                    f"数据源占位符 ${{{name}}} 无法填充（push 只填 {known}）",
                    f"datasource placeholder ${{{name}}} is not one push fills ({known})",
                )
            )
    return board


def load_dashboards(directory: str | None) -> tuple[Path, list[Board], list[str]]:
    """The dashboards push would install, and every problem with them (empty: all valid).

    Without ``directory`` they are the JSON jiancha ships (`paths.dashboards_dir`:
    ``dashboards/*.json`` in a checkout, kept equal to what ``dashboards/build.py``
    writes by a test; ``monitor/_dashboards`` in a wheel), so an installed jiancha
    needs no checkout. Push and ``--check`` load them through this one function.
    """
    from monitor import paths

    folder = paths.dashboards_dir() if directory is None else Path(directory)
    boards = [_read_board(f) for f in sorted(folder.glob("*.json"))]
    problems: list[str] = []
    if not boards:
        problems.append(
            h(f"{folder} 中没有仪表盘 JSON 文件", f"no dashboard JSON files in {folder}")
        )
    seen: dict[str, str] = {}
    for board in boards:
        problems.extend(f"{board.name}: {p}" for p in board.problems)
        if board.uid and board.uid in seen:
            problems.append(
                h(
                    f"{board.name}: uid {board.uid} 与 {seen[board.uid]} 重复",
                    f"{board.name}: uid {board.uid} is also the uid of {seen[board.uid]}",
                )
            )
        seen.setdefault(board.uid, board.name)
    return folder, boards, problems
