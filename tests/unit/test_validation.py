"""The MLflow input rules in `modelyard.protocol.validation` and artifact-location containment."""

from __future__ import annotations

import math

import pytest

from modelyard.entities import Metric, Param, RunTag
from modelyard.exceptions import ModelyardException
from modelyard.protocol import limits, validation
from modelyard.store.tracking import artifact_locations


def _invalid(fn, *args):  # type: ignore[no-untyped-def]
    with pytest.raises(ModelyardException) as info:
        fn(*args)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert info.value.http_status == 400
    return info.value


@pytest.mark.parametrize("key", ["loss", "a/b", "val loss", "x-1.y_2", "ns:metric", "ünïcode", "a" * 250])
def test_valid_keys_are_accepted(key: str) -> None:
    assert validation.validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        None,
        3,
        "a" * 251,
        "bad!",
        "a\nb",
        "/abs",
        "a/../b",
        "../up",
        "..",
        ".",
        "./x",
        "a//b",
        "a/",
        "tab\t",
    ],
)
def test_invalid_keys_are_refused(key: object) -> None:
    _invalid(validation.validate_key, key)


@pytest.mark.parametrize("value", [0.0, -1.5, 3, math.nan, math.inf, -math.inf, 1e308])
def test_metric_values_accept_every_double(value: float) -> None:
    validation.validate_metric(Metric("m", value, 0, 0))


@pytest.mark.parametrize("value", [None, True, "1.0", [1]])
def test_metric_values_must_be_numbers(value: object) -> None:
    err = _invalid(validation.validate_metric, Metric("m", value, 0, 0))  # type: ignore[arg-type]
    assert "'m'" in err.message


@pytest.mark.parametrize(
    ("timestamp", "step"), [(-1, 0), (1.5, 0), (0, 2**63), (0, "1"), (True, 0), (0, None)]
)
def test_metric_timestamp_and_step_must_be_int64(timestamp: object, step: object) -> None:
    _invalid(validation.validate_metric, Metric("m", 1.0, timestamp, step))  # type: ignore[arg-type]


def test_negative_steps_are_allowed() -> None:
    validation.validate_metric(Metric("m", 1.0, 0, -5))


def test_param_and_tag_value_limits() -> None:
    validation.validate_param(Param("p", "x" * limits.MAX_PARAM_VALUE_LENGTH))
    _invalid(validation.validate_param, Param("p", "x" * (limits.MAX_PARAM_VALUE_LENGTH + 1)))
    _invalid(validation.validate_param, Param("p", 5))  # type: ignore[arg-type]
    validation.validate_tag(RunTag("t", "x" * limits.MAX_TAG_VALUE_LENGTH))
    _invalid(validation.validate_tag, RunTag("t", "x" * (limits.MAX_TAG_VALUE_LENGTH + 1)))
    _invalid(validation.validate_experiment_tag, "t", "x" * (limits.MAX_EXPERIMENT_TAG_VALUE_LENGTH + 1))


def test_batch_limits_per_kind_and_in_total() -> None:
    metrics = [Metric("m", 1.0, 0, i) for i in range(limits.MAX_METRICS_PER_BATCH)]
    validation.validate_batch_limits(metrics, [], [])
    _invalid(validation.validate_batch_limits, [*metrics, Metric("m", 1.0, 0, -1)], [], [])
    params = [Param(f"p{i}", "v") for i in range(limits.MAX_PARAMS_PER_BATCH + 1)]
    _invalid(validation.validate_batch_limits, [], params, [])
    tags = [RunTag(f"t{i}", "v") for i in range(limits.MAX_TAGS_PER_BATCH + 1)]
    _invalid(validation.validate_batch_limits, [], [], tags)
    err = _invalid(validation.validate_batch_limits, metrics[:950], params[:50], tags[:1])
    assert "in total" in err.message


def test_batch_duplicate_param_keys_must_agree() -> None:
    validation.validate_batch([], [Param("p", "1"), Param("p", "1")], [])
    err = _invalid(validation.validate_batch, [], [Param("p", "1"), Param("p", "2")], [])
    assert "'p'" in err.message


def test_batch_reports_a_bad_last_item() -> None:
    good = [Metric(f"m{i}", 1.0, 0, 0) for i in range(10)]
    _invalid(validation.validate_batch, [*good, Metric("bad!", 1.0, 0, 0)], [], [])


@pytest.mark.parametrize(
    "bad",
    [
        Metric("k", True, 1, 1),
        Metric("k", None, 1, 1),
        Metric("k", 10**400, 1, 1),
        Metric("k", 1.0, -1, 1),
        Metric("k", 1.0, 1, 2**63),
        Metric("k", 1.0, 1.5, 1),
        Metric("k", 1.0, 1, "2"),
        Metric("k/../x", 1.0, 1, 1),
    ],
)
def test_a_batch_checks_every_metric_even_after_its_key_was_seen(bad: Metric) -> None:
    """Keys are checked once per batch; the values of every metric still are, with the same error."""
    good = [Metric("k", 1.0, 1, s) for s in range(3)]
    expected = _invalid(validation.validate_metric, bad)
    assert _invalid(validation.validate_metrics, [*good, bad, *good]).message == expected.message


def test_the_first_bad_metric_of_a_batch_is_reported() -> None:
    batch = [Metric("k", 1.0, 1, 0), Metric("k", "x", 1, 0), Metric("bad!", 1.0, 1, 0)]  # type: ignore[arg-type]
    assert "'x'" in _invalid(validation.validate_metrics, batch).message


def test_other_real_numbers_take_the_general_path() -> None:
    from fractions import Fraction

    validation.validate_metrics([Metric("k", 1.0, 1, 0), Metric("k", Fraction(1, 3), 1, 0)])  # type: ignore[arg-type]
    validation.validate_metrics([Metric("k", 1.0, 1, 0), Metric("k", 2**1000, 1, 0)])
    assert validation.is_plain_double(2**1000) and not validation.is_plain_double(10**400)
    assert not validation.is_plain_double(True) and not validation.is_plain_double("1.0")


@pytest.mark.parametrize("name", ["", "   ", None, 7, "x" * (limits.MAX_EXPERIMENT_NAME_LENGTH + 1)])
def test_invalid_experiment_names(name: object) -> None:
    _invalid(validation.validate_experiment_name, name)


def test_experiment_name_at_the_limit() -> None:
    name = "x" * limits.MAX_EXPERIMENT_NAME_LENGTH
    assert validation.validate_experiment_name(name) == name


def test_run_id_format() -> None:
    assert validation.validate_run_id("0123abcd" * 4)
    for bad in ("", "-abc", "a b", "a/b", None, "x" * 257):
        _invalid(validation.validate_run_id, bad)


def test_experiment_id_recognition() -> None:
    assert validation.is_experiment_id("0")
    assert validation.is_experiment_id(12)
    for bad in ("", "abc", "-1", "1.0", True, None, "1" * 19):
        assert not validation.is_experiment_id(bad)


def test_max_results() -> None:
    assert validation.validate_max_results(10, 100) == 10
    for bad in (0, -1, 101, True, "5"):
        _invalid(validation.validate_max_results, bad, 100)


# ---- artifact locations --------------------------------------------------------------------------
ROOTS = ("s3://bucket/root", "/data/artifacts", "mlflow-artifacts:/")


@pytest.mark.parametrize(
    "location",
    [
        "s3://bucket/root/exp",
        "s3://BUCKET/root/a/b",
        "s3://bucket/root",
        "/data/artifacts/x",
        "file:///data/artifacts/x",
        "file://localhost/data/artifacts/y",
        "/data/artifacts/./x/",
        "mlflow-artifacts:/anything/here",
    ],
)
def test_locations_inside_a_root_are_accepted(location: str) -> None:
    artifact_locations.check_within_roots(location, ROOTS)


@pytest.mark.parametrize(
    "location",
    [
        "s3://bucket/rootx",
        "s3://other/root/exp",
        "s3://bucket/root/../elsewhere",
        "s3://bucket/root/%2e%2e/elsewhere",
        "/data/artifacts/../etc",
        "/data/artifacts-evil/x",
        "/etc/passwd",
        "file:///data/artifacts/../../etc",
        "gs://bucket/root/exp",
        "s3://bucket/root/x?versionId=1",
        "relative/path",
    ],
)
def test_locations_outside_every_root_are_refused(location: str) -> None:
    _invalid(artifact_locations.check_within_roots, location, ROOTS)


def test_relative_roots_resolve_against_the_working_directory(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    assert artifact_locations.resolve_root("./arts") == str(tmp_path / "arts")
    assert artifact_locations.check_within_roots("arts/e1", ("./arts",)) == str(tmp_path / "arts" / "e1")
    assert artifact_locations.resolve_root("s3://b/p/") == "s3://b/p"
    assert artifact_locations.resolve_root("mlflow-artifacts:/") == "mlflow-artifacts:/"
    assert artifact_locations.location_for("mlflow-artifacts:/", 3) == "mlflow-artifacts:/3"
