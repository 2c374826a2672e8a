"""The endpoint page's invocation counts fragment through the ASGI app when the SageMaker API reports
none: a short note, never an error page. (Counts from the real endpoint service are shown in
tests/ui/test_deployments_page.py; CloudWatch's, through moto, in tests/ui/test_deploy_actions_app.py.)"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from modelyard.devstack.process import free_port


def test_a_sagemaker_api_without_counts_is_a_note(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    fragment = client.get("/deployments/churn/invocations", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert 'id="invocations-none"' in fragment.text and "not reported" in fragment.text
    assert "<html" not in fragment.text  # a fragment, not a page


def test_a_service_that_is_not_an_endpoint_service_reports_none(client: TestClient, monkeypatch: pytest.MonkeyPatch, ui_server: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", ui_server)  # answers, but has no such route (a 404)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    fragment = client.get("/deployments/churn/invocations", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and 'id="invocations-none"' in fragment.text
