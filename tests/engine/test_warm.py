"""A start loads numba's kernels before the first batch, not in it (`Evaluator.warm`).

Each check runs in a fresh process (this one has every kernel loaded by
other tests): a simulated centre's month of cases is decided as batches
would decide them, counting the kernel signatures numba loads meanwhile.
After `warm` none may load; without it some do, which is what the check
would miss if it could not fail.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.sourcekit import REPO

SCRIPT = r"""
import datetime as dt, json, sys
from collections import defaultdict
from numba.core.dispatcher import Dispatcher
from monitor.calendar import load_calendar
from monitor.clocks.scheduler import row_of
from monitor.engine.decide import decide_cases
from monitor.evaluator import Evaluator
from monitor.rules.load import load_rules
from monitor.source.contract import SourceEvent
from monitor.state.reduce import reduce_case
from monitor.state.view import CaseView
from monitor.whatif.simulate import generate, load_catalogue

cal, catalogue = load_calendar("cn"), load_catalogue()
now = dt.datetime(2024, 4, 1, 2, tzinfo=dt.UTC)
ev = Evaluator(load_rules("cards"), cal)
events = generate(catalogue, cal, dt.date(2024, 3, 1), 31, per_day=40, seed=3)
ms = ev.warm(now) if sys.argv[1] == "warm" else 0.0
loaded = []
real = Dispatcher._compile_for_args
def counting(self, *args, **kws):
    loaded.append(self.py_func.__name__)
    return real(self, *args, **kws)
Dispatcher._compile_for_args = counting
by_case = defaultdict(list)
for i, e in enumerate(events, 1):
    if e.occurred_at <= now:
        by_case[e.case_id].append(SourceEvent(i, i, e.case_id, e.kind, e.occurred_at, e.payload))
views = [CaseView.from_state(reduce_case(c, es, catalogue.matters)) for c, es in by_case.items()]
at = int(now.timestamp())
for running in (False, True):
    for k in range(0, len(views), 50):  # batches of 50 cases
        part = [(v, catalogue.matters.get(v.matter), []) for v in views[k:k + 50]]
        got = decide_cases(part, ev.ruleset, cal, at, running=running, figures=True)
        rows = {v.case_id: ([row_of(p, rel, at) for p, rel in zip(d.running, d.running_pauses)],
                            {}) for (v, _, _), d in zip(part, got)}
        ev.scheduler.put_settled(rows, {}, {}, cal, at)  # as a live batch
ev.scheduler.rising(cal, at + 86400)  # and the tick
print(json.dumps({"loaded": loaded, "cases": len(views), "ms": ms}))
"""


def _run(mode: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=True)  # fmt: skip
    got: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return got


def test_after_warm_no_batch_loads_a_kernel() -> None:
    warm, cold = _run("warm"), _run("cold")
    assert warm["cases"] == cold["cases"] and int(str(warm["cases"])) > 500
    assert warm["loaded"] == [], warm
    assert cold["loaded"], "the cases load nothing even cold: the check cannot fail"
