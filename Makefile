# jiancha — developer and operator entry points. Every target sets up what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: help venv deps demo calendar-demo test lint pytest bench bench-calendar bench-tailer bench-tailer-ab bench-live-ab bench-cards bench-metrics bench-startup bench-poison bench-chatty bench-failover bench-leader bench-outage bench-web bench-report bench-catchup bench-ledger bench-quick bench-quick-ab samples dashboards clean

help:
	@echo "make demo            a county service centre on an embedded PostgreSQL, and the daemon"
	@echo "make calendar-demo   show the working-day calendar at work"
	@echo "make test            lint (ruff, mypy, import-linter) and the whole test suite (runs make deps first)"
	@echo "make deps            the Debian packages the suite needs (deploy/dev-deps.sh; root installs)"
	@echo "make lint            ruff, mypy (strict) and import-linter (the pipeline's layers)"
	@echo "make bench           all benchmarks at full size (tests/bench, ~45 min; docs/performance.md)"
	@echo "make bench-quick     a smoke run of every benchmark at a small size (CI)"
	@echo "make bench-quick-ab BASE=REV [OTHER=REV]   bench-quick of two revisions, interleaved"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# promtool, Alertmanager, shellcheck, openssl, systemd-analyze, python3-venv: installed when
# run as root, else named with the command that installs them (exit 1). Silent and quick
# when all are there, so it runs every time. `make demo` needs none of them.
deps:
	@deploy/dev-deps.sh

# Ctrl-C stops it; DEMO_ARGS="--speed 1200 --days 3" or "--headless" for a script.
demo: venv
	$(BIN)/jiancha demo $(DEMO_ARGS)

calendar-demo: venv
	@echo "== 2024-02-08（星期四）10:00 受理，5 个工作日（春节放假 2 月 10–17 日，2 月 4 日、18 日调休上班）"
	$(BIN)/jiancha calendar deadline --start 2024-02-08T10:00 --workdays 5 --explain
	@echo "== 2024-02-03（星期六）提交，受理时限 1 个工作日"
	$(BIN)/jiancha calendar deadline --start 2024-02-03T09:00 --workdays 1
	@echo "== 2020 年春节延长假期、2019 年五一调整"
	$(BIN)/jiancha calendar is-workday 2020-02-01 2020-02-03 2019-05-02 2019-05-05
	@echo "== 已用工作日（2 月 19 日中午）"
	$(BIN)/jiancha calendar count --start 2024-02-08T10:00 --end 2024-02-19T12:00
	@echo "== 办公时间模式（09:00–12:00, 13:30–17:30）"
	$(BIN)/jiancha calendar deadline --calendar example-centre --start 2024-02-08T10:00 --workdays 5
	@echo "== 尚未公布节假日安排的年份：暂定"
	$(BIN)/jiancha calendar deadline --start 2026-12-21T10:00 --workdays 9 --json

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# The suite on JOBS workers (default: every core), each module whole on one worker (its
# module-scoped servers are started once; JOBS=0: in this process); then, alone, the tests
# that run the daemon as a child process on real time (marked serial in tests/conftest.py).
pytest: deps venv
	$(BIN)/pytest -n $(or $(JOBS),auto) --dist loadfile -m "not serial"
	$(BIN)/pytest -m serial

test: deps lint pytest

bench: bench-calendar bench-tailer bench-cards bench-metrics bench-startup bench-poison bench-chatty bench-failover bench-leader bench-web bench-report bench-catchup bench-ledger

bench-calendar: venv
	$(BIN)/python -m tests.bench.bench_calendar

bench-tailer: venv
	$(BIN)/python -m tests.bench.bench_tailer

# The drain of git revision BASE (default HEAD) against the working tree, interleaved
# (the VM's CPU speed drifts too much to compare separate runs). AB_ARGS="--runs 10".
bench-tailer-ab: venv
	$(BIN)/python -m tests.bench.ab_tailer $(or $(BASE),HEAD) $(AB_ARGS)

# The daemon's live batch of BASE (default HEAD) against the working tree, on the same
# events, alone (no writers sharing the cores): ms and round trips a batch.
bench-live-ab: venv
	$(BIN)/python -m tests.bench.ab_live $(or $(BASE),HEAD) $(AB_ARGS)

bench-cards: venv
	$(BIN)/python -m tests.bench.bench_cards

# The ledger's insert taken apart on the server: each index, trigger and check (~3 min)
bench-ledger: venv
	$(BIN)/python -m tests.bench.bench_ledger

bench-web: venv
	$(BIN)/python -m tests.bench.bench_web

bench-metrics: venv
	$(BIN)/python -m tests.bench.bench_metrics

bench-startup: venv
	$(BIN)/python -m tests.bench.bench_startup

# 10,000 bad events among 100,000 good: exits 1 unless all good taken, all bad dead-lettered.
bench-poison: venv
	$(BIN)/python -m tests.bench.bench_poison

# A chatty case costs its new events, not its history (docs/reliability.md).
bench-chatty: venv
	$(BIN)/python -m tests.bench.bench_chatty

# A primary and its streaming replica (Debian's postgresql-15): clean, crashed, lagging.
bench-failover: venv
	$(BIN)/python -m tests.bench.bench_failover

# Leader failover x10 (two daemons, SIGKILL/SIGSTOP): takeover times and counts (~2 min).
bench-leader: venv
	$(BIN)/python -m tests.bench.bench_leader

# A 5-minute database outage under NOTIFY_SOCKET with the watchdog on (~6 min).
bench-outage: venv
	$(BIN)/python -m tests.bench.bench_outage

# A monthly bulletin of a city-scale month (5,600 cases a working day): time, peak memory (~10 min).
bench-report: venv
	$(BIN)/python -m tests.bench.bench_report

bench-catchup: venv
	$(BIN)/python -m tests.bench.bench_catchup

# docs/samples/: a bulletin of each kind from the demo centre's 2025, PDF and page 1 (~15 min).
samples: venv
	$(BIN)/python -m tests.report.make_samples --out docs/samples

dashboards: venv
	$(BIN)/python -m dashboards.build

# Smoke run, two benchmarks at a time (no figure is compared): tests/bench/quick.py
bench-quick: venv
	$(BIN)/python -m tests.bench.quick

# Is any figure of OTHER (default: the checkout's HEAD) worse than the noise against BASE?
# Both revisions run from git worktrees, alternating, ROUNDS rounds after a dropped warm-up.
bench-quick-ab: venv
	$(BIN)/python -m tests.bench.ab_quick $(or $(BASE),HEAD~1) $(or $(OTHER),HEAD) --rounds $(or $(ROUNDS),3)

clean:
	rm -rf $(VENV) .jiancha-demo .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
