"""``make bench-quick`` of two code revisions, interleaved: is any figure worse than the noise?

Run from the repository root::

    python -m tests.bench.ab_quick BASE [OTHER] [--rounds N] [--only bench_tailer,...]

BASE and OTHER are git revisions (OTHER defaults to the working tree). The
VM's CPU speed drifts by up to 1.5x over minutes, so two separate runs of
the quick benchmarks cannot tell a change from noise. Here each round runs
every quick benchmark once for each revision, alternating, each in a fresh
process with that revision's own code and its own benchmark scripts (a
worktree). A warm-up round (numba caches, plans) is run first and dropped.
Every figure a benchmark prints as ``label  <number> <unit>`` is collected;
the table gives each figure's median per revision, the ratio, and the
spread between rounds of the base revision, which is the noise a ratio has
to beat.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCHES = ("bench_calendar", "bench_tailer", "bench_cards", "bench_metrics", "bench_startup")

# "backlog drain, best batch size   22,595 events/s  >= 100,000  MISSED"
_ROW = re.compile(
    r"^\s*(?P<label>\S.*?\S)\s{2,}(?P<value>-?[\d,]+(?:\.\d+)?)(?:\s*/\s*[\d,.]+)?\s*"
    r"(?P<unit>events/s|ms|us|µs|B|%|s)?(?!\w)"
)
# bench_startup: "   100 cases a day: ...: READY in 1505 ms median (min 1485) ..."
_READY = re.compile(r"^\s*(?P<label>.*?):.*?READY in (?P<value>[\d,]+) ms median")
_HIGHER_IS_BETTER = ("events/s", "/s", "%")


def figures(text: str) -> dict[str, tuple[float, str]]:
    """Every ``label value unit`` a benchmark printed: label -> (value, unit)."""
    out: dict[str, tuple[float, str]] = {}
    for line in text.splitlines():
        m = _READY.match(line)
        unit = "ms"
        if m is None:
            m = _ROW.match(line)
            if m is None:
                continue
            unit = m["unit"] or ("/s" if m["label"].rstrip().endswith("/s") else "")
        label = " ".join(m["label"].split())
        if label.startswith(("-", "=")) or label in out or not (unit or "/s" in label):
            continue
        out[label] = (float(m["value"].replace(",", "")), unit)
    return out


def checkout(rev: str, into: Path) -> Path:
    """A detached worktree of ``rev`` (removed by the caller)."""
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--force", str(into),
                    rev], check=True, capture_output=True, text=True)  # fmt: skip
    return into


def run(code: Path, bench: str) -> dict[str, tuple[float, str]]:
    cmd = [sys.executable, "-m", f"tests.bench.{bench}", "--quick"]
    done = subprocess.run(cmd, cwd=code, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{bench} failed in {code}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return figures(done.stdout)


def report(base: str, other: str, seen: dict[str, dict[str, list[tuple[float, str]]]]) -> None:
    print(f"\n{'figure':<66} {base:>12} {other:>12}  ratio  base spread  verdict")
    for label in seen[base]:
        a = [v for v, _ in seen[base][label]]
        b = [v for v, _ in seen[other].get(label, [])]
        if not a or not b:
            continue
        unit = seen[base][label][0][1]
        ma, mb = statistics.median(a), statistics.median(b)
        if ma == 0:
            continue
        ratio = mb / ma
        spread = (max(a) - min(a)) / ma if len(a) > 1 else 0.0
        worse = ratio < 1 if unit in _HIGHER_IS_BETTER else ratio > 1
        change = abs(ratio - 1)
        verdict = "same" if change <= max(spread, 0.05) else ("WORSE" if worse else "better")
        print(f"{label[:66]:<66} {ma:>10,.1f}{unit[:2]:>2} {mb:>10,.1f}{unit[:2]:>2}  "
              f"{ratio:5.2f}  {spread:10.0%}  {verdict}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("other", nargs="?")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help="comma-separated benchmarks (default: all quick ones)")
    args = parser.parse_args()
    benches = args.only.split(",") if args.only else list(BENCHES)
    tmp = Path(tempfile.mkdtemp(prefix="jiancha-ab-quick-"))
    started = time.monotonic()
    try:
        codes = {args.base: checkout(args.base, tmp / "base")}
        other = args.other or "working tree"
        codes[other] = checkout(args.other, tmp / "other") if args.other else REPO
        seen: dict[str, dict[str, list[tuple[float, str]]]] = {name: {} for name in codes}
        for i in range(args.rounds + 1):
            for bench in benches:
                for name, code in codes.items():
                    got = run(code, bench)
                    if i == 0:
                        continue  # warm-up: numba caches of each worktree, plans
                    for label, value in got.items():
                        seen[name].setdefault(label, []).append(value)
            print(f"round {i}{' (warm-up, dropped)' if i == 0 else ''} done "
                  f"after {time.monotonic() - started:.0f} s", flush=True)  # fmt: skip
        report(args.base, other, seen)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tmp / "base")],
                       capture_output=True)  # fmt: skip
        if args.other:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                            str(tmp / "other")], capture_output=True)  # fmt: skip
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"(ran {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
