"""Documented example keys stay quiet; live keys of the same shape do not."""

from __future__ import annotations

from llm_localfirst.sensitivity import DETECTORS, scanner_for


def test_telegrams_documented_example_token_stays_quiet_whatever_the_bot_id() -> None:
    scan = scanner_for(DETECTORS).scan
    assert not scan("TELEGRAM_BOT_TOKEN=123456789:ABC-DEF1234ghIkl-zyx57W2v1u123ew11")
    assert not scan('token: "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"')
    assert not scan("bot 110201543:ABC-DEF1234ghIkl-zyx57W2v1u123ew11 (from the docs)")


def test_a_token_that_differs_from_the_documented_example_is_found() -> None:
    scan = scanner_for(DETECTORS).scan
    assert scan("TELEGRAM_BOT_TOKEN=123456789:ABC-DEF1234ghIkl-zyx57W2v1u123ew12") == {"secret"}
    assert scan("bot 7123456789:AAH3kd93jfKd0s9dkf83KdL0qpWmZx7Yv2c") == {"secret"}
