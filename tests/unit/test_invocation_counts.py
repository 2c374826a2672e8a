"""The endpoint service's in-memory invocation counts and the UI's check of their wire shape (pure logic;
the counting over real sockets is in tests/integration/test_endpoints_service.py)."""

from __future__ import annotations

import time

from modelyard.deploy.invocations import InvocationCounts, VariantCounts, parse
from modelyard.endpoints.counters import InvocationCounters


def test_counts_per_variant_with_errors_and_the_last_time() -> None:
    counters = InvocationCounters()
    before = int(time.time() * 1000)
    counters.record("e", "a", error=False)
    counters.record("e", "a", error=True)
    counters.record("e", "b", error=True)
    counters.record("other", "a", error=False)
    report = counters.report("e", ["a", "b", "c"])
    assert report["since"] <= before
    assert report["variants"]["a"]["invocations"] == 2 and report["variants"]["a"]["errors"] == 1
    assert report["variants"]["b"]["invocations"] == 1 and report["variants"]["b"]["errors"] == 1
    assert report["variants"]["a"]["last_invocation"] >= before
    assert report["variants"]["c"] == {"invocations": 0, "errors": 0, "last_invocation": None}
    assert list(report["variants"]) == ["a", "b", "c"]  # the endpoint's order; a variant gone is left out
    counters.forget("e")
    assert counters.report("e", ["a"])["variants"]["a"]["invocations"] == 0
    assert counters.report("other", ["a"])["variants"]["a"]["invocations"] == 1


def test_the_ui_reads_the_service_answer_and_nothing_else() -> None:
    counters = InvocationCounters()
    counters.record("e", "a", error=True)
    parsed = parse(counters.report("e", ["a", "b"]))
    assert parsed is not None and parsed.source == "endpoint service"
    assert parsed.variants[0].invocations == 1 and parsed.variants[0].errors == 1
    assert parsed.variants[1] == VariantCounts("b", 0, 0, None)
    assert isinstance(parsed, InvocationCounts)
    for other in (
        [],
        {"since": 1},
        {"since": "1", "variants": {}},
        {"since": 1, "variants": {"a": {"invocations": -1, "errors": 0}}},
        {"since": 1, "variants": {"a": {"invocations": True, "errors": 0}}},
        {"since": 1, "variants": {"a": {"invocations": 1, "errors": 0, "last_invocation": "now"}}},
        {"since": 1, "variants": {"a": 3}},
    ):
        assert parse(other) is None, other
