"""`bench/sandbox.py` at a small size against the real sandbox process: every send accepted
once, every receipt delivered, the API answering while the receipts flow (no timings)."""

from __future__ import annotations

from bench.sandbox import measure_sandbox


def test_a_small_bench_run_loses_nothing_and_sends_each_number_once() -> None:
    figures = measure_sandbox(sends=300, batch=100, concurrency=3, hold_s=3, timeout_s=60)

    assert figures["send_errors"] == figures["mixed_send_errors"] == 0
    assert figures["pushes_lost"] == figures["mixed_pushes_lost"] == 0
    assert figures["api_failures_during_pushes"] == 0
    assert figures["sandbox_sends_logged"] == 600
    assert figures["sandbox_numbers_sent_twice"] == 0
    assert figures["sandbox_pushes_given_up"] == 0
