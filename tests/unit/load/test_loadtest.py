"""mnist-loadtest: a short bounded run (about 10 s) against a real gateway, every user type."""

from __future__ import annotations

from mnist_client.loadtest.runner import gate


def test_gates_fail_on_breach() -> None:
    summary = {"aggregated": {"requests": 100, "failures": 2, "error_rate": 0.02, "p99_ms": 80.0}}
    assert gate(summary, slo_p99_ms=100, max_error_rate=0.05) == 0
    assert gate(summary, slo_p99_ms=50, max_error_rate=None) == 1
    assert gate(summary, slo_p99_ms=None, max_error_rate=0.01) == 1
    assert gate({"aggregated": {"requests": 0}}, None, None) == 1


def test_remote_hosts_need_an_explicit_flag() -> None:
    from mnist_client.loadtest.runner import main

    assert main(["--host", "http://10.0.0.1:8080"]) == 2
    assert main(["--steps", "a,b"]) == 2
