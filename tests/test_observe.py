"""The daemon's side of the metrics: what the snapshot reads from the components."""

from __future__ import annotations

import datetime as dt

from exporters.metrics import Holder
from monitor.calendar import load_calendar
from monitor.calendar.regions import load_regions
from monitor.cards.memory import MemoryStore
from monitor.evaluator import Evaluator
from monitor.observe import Snapshotter
from monitor.source.contract import Matter, SourceEvent
from monitor.state.reduce import reduce_case
from monitor.state.view import CaseView
from tests.metricskit import scrape, snapshot

M1 = Matter("M1", "建筑工程施工许可", "住建局", 20, 5)
T = dt.datetime(2024, 9, 2, 2, tzinfo=dt.UTC)


def view(case_id: str, region: str) -> CaseView:
    sub = {"matter": "M1", "window": "W1", "region": region, "channel": "window"}
    events = [SourceEvent(1, 1, case_id, "submitted", T, sub),
              SourceEvent(2, 2, case_id, "accepted", T, {})]  # fmt: skip
    return CaseView.from_state(reduce_case(case_id, events, {"M1": M1}))


async def test_open_clocks_count_every_calendars_table(rules):
    cal = load_calendar("cn")
    ev = Evaluator(rules, cal, regions=load_regions(cal, {"2224": "yanbian"}))
    views = [view("CC", "220102"), view("YJ", "222401")]  # 延边 counts on its own table
    ev.publish(await ev.decide_views(MemoryStore(), views, {"M1": M1}, T, running=True))
    assert len(ev.table) > 0 and ev.scheduler.rows() == 2 * len(ev.table)
    snap = Snapshotter(Holder(), "", evaluator=ev, clock=lambda: T.timestamp())._figures(None)
    assert snap.open_clocks == ev.scheduler.rows()


def test_overdue_cases_are_exposed_at_zero_for_every_department_with_open_cases():
    text = scrape(snapshot(
        database_up=True,
        open_cases={("住建局", "W1", "M1", "red"): 4, ("市场监管局", "W2", "M2", "none"): 2},
        overdue_cases={"住建局": 3},
    ))  # fmt: skip
    assert 'jiancha_overdue_cases{department="住建局"} 3.0' in text
    assert 'jiancha_overdue_cases{department="市场监管局"} 0.0' in text


def test_windows_the_configuration_does_not_name_fold_into_one_label():
    from monitor.config import NotifyConfig
    from monitor.outbox.enqueue import Notifier

    rows = [
        {
            "department": "住建局",
            "window": "综合受理1号窗口",
            "matter": "M1",
            "level": "red",
            "n": 2,
        },
        {
            "department": "住建局",
            "window": "临时窗口（手填）",
            "matter": "M1",
            "level": "red",
            "n": 3,
        },
        {"department": "住建局", "window": "窗口 7 ", "matter": "M1", "level": "red", "n": 1},
    ]
    cfg = NotifyConfig(windows={"综合受理1号窗口": ("w1",)})
    snap = Snapshotter(Holder(), "", notifier=Notifier(cfg, load_calendar("cn")))
    assert snap._open_cases(rows) == {
        ("住建局", "综合受理1号窗口", "M1", "red"): 2,
        ("住建局", "其他", "M1", "red"): 4,
    }


def test_the_daemons_process_metrics_are_exposed():
    text = scrape(snapshot(database_up=True))
    assert "process_resident_memory_bytes " in text and "process_open_fds " in text
