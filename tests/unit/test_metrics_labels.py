"""Route labels of /metrics: bounded templates, with the include prefix restored (pure logic)."""

from __future__ import annotations

from types import SimpleNamespace

from modelyard.runtime.metrics import route_label


def _scope(path: str, template: str | None) -> dict[str, object]:
    return {"path": path, "route": SimpleNamespace(path=template) if template else None}


def test_plain_route_gets_its_prefix_back() -> None:
    assert (
        route_label(_scope("/ajax-api/2.0/mlflow/runs/get", "/mlflow/runs/get"))
        == "/ajax-api/2.0/mlflow/runs/get"
    )


def test_path_parameters_stay_templates() -> None:
    scope = _scope(
        "/api/2.0/mlflow/logged-models/m-123abc/tags/k", "/mlflow/logged-models/{model_id}/tags/{tag_key}"
    )
    assert route_label(scope) == "/api/2.0/mlflow/logged-models/{model_id}/tags/{tag_key}"
    scope = _scope(
        "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/a/b.txt",
        "/api/2.0/mlflow-artifacts/artifacts/{path:path}",
    )
    assert route_label(scope) == "/api/2.0/mlflow-artifacts/artifacts/{path:path}"


def test_unmatched_requests_share_one_label() -> None:
    assert route_label(_scope("/no/such/thing", None)) == "unmatched"
