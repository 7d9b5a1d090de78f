"""``monitor.redact``: the one masking of every stored error text and log line."""

from __future__ import annotations

import pytest

from monitor.redact import mask, redact_text

KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("connect to postgresql://reader:Pa55word@db:5432/approval failed", "Pa55word",
         "postgresql://reader:***@db:5432/approval"),
        ("host=db user=reader password='p w\\'x' dbname=approval", "p w", "dbname=approval"),
        (f"POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}&debug=1", KEY,
         "send?key=***&debug=1"),
        ("https://oapi.dingtalk.com/robot/send?access_token=abcdef123456&timestamp=1&sign=c2ln",
         "abcdef123456", "timestamp=1"),
        ("proxy said: Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "eyJhbGci",
         "Authorization: ***"),
        ("headers={'authorization': 'Basic cHJvbTpzM2NyM3Q=', 'accept': '*/*'}", "cHJvbTpz",
         "'accept': '*/*'"),
        ("upstream refused token Bearer abcdefgh12345678", "abcdefgh1234", "Bearer ***"),
    ],
)  # fmt: skip
def test_the_shapes_of_secrets_are_masked(text: str, secret: str, kept: str) -> None:
    for out in (mask(text), redact_text(text)):
        assert secret not in out
        assert kept in out, out


def test_configured_secrets_are_masked_plain_and_url_encoded_in_one_short_line() -> None:
    secret = "s3cr3t/签名+key"
    text = (f"RuntimeError: posting to http://hook.example/x?t=s3cr3t%2F%E7%AD%BE%E5%90%8D%2Bkey\n"
            f"  echoed body: {{'secret': '{secret}'}}\n" + "x" * 1000)  # fmt: skip
    out = redact_text(text, [secret, None, ""], limit=200)
    assert "s3cr3t" not in out and "%E7%AD%BE" not in out
    assert "\n" not in out and len(out) == 200 and out.endswith("…")
    assert out.startswith("RuntimeError: posting to http://hook.example/x?t=***")


def test_ordinary_text_is_left_alone() -> None:
    text = "HTTP 503 Service Unavailable; idempotency_key=card:42:w1 errcode 45009"
    assert mask(text) == text and redact_text(text) == text
