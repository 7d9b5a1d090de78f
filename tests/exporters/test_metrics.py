"""The collector: bounded labels, every level at zero, promtool-clean, failures visible."""

from __future__ import annotations

import shutil
import subprocess

from exporters.metrics import Holder, registry_for
from tests.metricskit import scrape, snapshot


def test_failed_notifications_and_levels_are_exposed():
    text = scrape(snapshot(
        taken_at=1_700_000_000.0, version="0.1", database_up=True,
        notifications={("w1", "failed"): 3, ("w1", "delivered"): 10},
        delivered={"w1": 10}, failed={"w1": 3}, unrouted=2,
        open_cases={("住建局", "W1", "M1", "red"): 4},
        active_cards={("red", "decision_time", "住建局"): 4},
        completions={("住建局", "early"): 5},
        ratings={("住建局", 5): 30, ("住建局", 1): 1}, bad_reviews={"住建局": (1, 1)},
    ))  # fmt: skip
    assert 'jiancha_ratings{department="住建局",rating="5"} 30.0' in text
    assert 'jiancha_ratings{department="住建局",rating="3"} 0.0' in text
    assert "# TYPE jiancha_ratings gauge" in text  # a re-rated case moves: not a counter
    assert 'jiancha_bad_reviews_rectified_total{department="住建局"} 1.0' in text
    assert 'jiancha_completions_total{department="住建局",outcome="early"} 5.0' in text
    assert 'jiancha_completions_total{department="住建局",outcome="late"} 0.0' in text
    assert 'jiancha_outbox_notifications{channel="w1",state="failed"} 3.0' in text
    assert 'jiancha_outbox_notifications{channel="w1",state="pending"} 0.0' in text
    assert 'jiancha_notifications_failed_total{channel="w1"} 3.0' in text
    assert "jiancha_notifications_unrouted_total 2.0" in text
    for level in ("none", "blue", "yellow"):  # the group's other levels exist at zero
        assert (f'jiancha_open_cases{{department="住建局",level="{level}",matter="M1",'
                f'window="W1"}} 0.0') in text  # fmt: skip
    assert 'jiancha_cards_issued_total{level="yellow"} 0.0' in text
    assert 'jiancha_evaluation_duration_seconds_bucket{le="+Inf"} 0.0' in text


def test_an_empty_snapshot_is_promtool_clean():
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: Debian package prometheus (CI installs it)"
    full = snapshot(database_up=True, failed={"w1": 1}, delivered={"w1": 2},
                    completions={("d", "late"): 1}, cards_total={("d", "red", "r"): 1},
                    ratings={("d", 2): 1}, bad_reviews={"d": (1, 0)})  # fmt: skip
    for snap in (snapshot(), full):
        check = subprocess.run([promtool, "check", "metrics"], input=scrape(snap), text=True,
                               capture_output=True, timeout=30)  # fmt: skip
        assert check.returncode == 0 and check.stdout == "" and check.stderr == "", check


def test_basic_auth_and_tls_on_the_endpoint(tmp_path):
    import ssl
    import urllib.error
    import urllib.request

    from exporters.metrics import serve

    openssl = shutil.which("openssl")
    assert openssl, "openssl missing (CI installs it)"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
            "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
            "-out", str(cert)]  # fmt: skip
    subprocess.run([openssl, *args], check=True, capture_output=True)
    holder = Holder()
    holder.set(snapshot(version="t"))
    server, port = serve("127.0.0.1:0", registry_for(holder), username="prom",
                         password="口令s3cret", certfile=str(cert), keyfile=str(key))  # fmt: skip
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        url = f"https://127.0.0.1:{port}/metrics"
        try:
            urllib.request.urlopen(url, context=ctx, timeout=10)
            raise AssertionError("a scrape without credentials got through")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        import base64

        token = base64.b64encode("prom:口令s3cret".encode()).decode()
        req = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            assert 'jiancha_build_info{version="t"} 1.0' in resp.read().decode()
        plain = f"http://127.0.0.1:{port}/metrics"  # TLS only: plain HTTP fails
        try:
            urllib.request.urlopen(plain, timeout=10)
            raise AssertionError("plain HTTP was served")
        except (urllib.error.URLError, ConnectionError):
            pass
    finally:
        server.shutdown()
        server.server_close()


def test_scrapes_serve_the_exposition_rendered_with_the_snapshot():
    import gzip
    import urllib.request

    from exporters.metrics import serve

    holder = Holder()
    registry = registry_for(holder)
    holder.publish(snapshot(events=7))
    server, port = serve("127.0.0.1:0", registry, holder=holder)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert "jiancha_events_ingested_total 7.0" in resp.read().decode()
        req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.headers["Content-Encoding"] == "gzip"
            assert b"jiancha_events_ingested_total 7.0" in gzip.decompress(resp.read())
        holder.set(snapshot(events=9))  # not rendered yet: the scrape renders it live
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert "jiancha_events_ingested_total 9.0" in resp.read().decode()
    finally:
        server.shutdown()
        server.server_close()


def test_the_configurations_labels_exist_at_zero_before_anything_happens():
    text = scrape(snapshot(departments=("住建局",), channels=("w1",), rules=("decision_time",)))
    for line in (
        'jiancha_overdue_cases{department="住建局"} 0.0',
        'jiancha_cards_total{department="住建局",level="red",rule="decision_time"} 0.0',
        'jiancha_active_cards{department="住建局",level="blue",rule="decision_time"} 0.0',
        'jiancha_completions_total{department="住建局",outcome="late"} 0.0',
        'jiancha_ratings{department="住建局",rating="1"} 0.0',
        'jiancha_bad_reviews_total{department="住建局"} 0.0',
        'jiancha_bad_reviews_rectified_total{department="住建局"} 0.0',
        'jiancha_notifications_failed_total{channel="w1"} 0.0',
        'jiancha_outbox_notifications{channel="w1",state="pending"} 0.0',
    ):
        assert line in text, line
    # and nothing beyond them: the labels are bounded by the configuration
    assert "其他" not in text and text.count("jiancha_overdue_cases{") == 1
