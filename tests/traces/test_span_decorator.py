"""The span decorator reads its function's signature once, not at each call (patch span-signature-once)."""

from __future__ import annotations

import inspect

from airflow.traces import tracer


def test_a_decorated_function_keeps_its_calls_and_reads_its_signature_once(monkeypatch):
    reads = []
    real_signature = inspect.signature

    def counting_signature(func, *args, **kwargs):
        reads.append(func.__name__)
        return real_signature(func, *args, **kwargs)

    monkeypatch.setattr(inspect, "signature", counting_signature)

    @tracer.span
    def add(a, b=1):
        return a + b

    @tracer.span
    def constant():
        return "no arguments"

    results = [add(1, b=2) for _ in range(3)] + [constant() for _ in range(3)]

    assert results == [3, 3, 3, "no arguments", "no arguments", "no arguments"]
    assert reads == ["add", "constant"]
