"""The webhook delivery log stays bounded: finished deliveries past the age or the per-webhook row
cap are pruned (by `modelyard gc` and by each delivery worker), the queue (pending, sending) never;
and the tracking API refuses webhook targets the SSRF guard forbids. SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from modelyard.cli import main
from modelyard.settings import Settings
from modelyard.store.sql.engine import create_engine_for
from modelyard.store.sql.migrate import upgrade
from modelyard.store.sql.webhook_schema import SqlWebhook, SqlWebhookDelivery
from modelyard.store.webhooks import deliveries
from modelyard.tracking.app import create_app

DAY = 86_400_000
NOW = 1_800_000_000_000


def _engine(uri: str):  # type: ignore[no-untyped-def]
    upgrade(uri)
    return create_engine_for(uri)


def _webhook(session: Session) -> str:
    webhook_id = uuid.uuid4().hex
    session.add(SqlWebhook(webhook_id=webhook_id, name="w", url="https://hooks.example.com/x", events="[]",
                           secret="s" * 20, active=True, creation_time=NOW, last_updated_time=NOW))  # fmt: skip
    return webhook_id


def _deliveries(session: Session, webhook_id: str, statuses_ages: list[tuple[str, int]]) -> None:
    for status, age_days in statuses_ages:
        created = NOW - age_days * DAY
        session.add(SqlWebhookDelivery(webhook_id=webhook_id, event_id=uuid.uuid4().hex, kind="run.finished", payload="{}",
                                       status=status, attempts=1, next_attempt_at=created, creation_time=created))  # fmt: skip


def _left(engine, webhook_id: str) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        rows = session.execute(
            select(SqlWebhookDelivery.status, SqlWebhookDelivery.creation_time)
            .where(SqlWebhookDelivery.webhook_id == webhook_id).order_by(SqlWebhookDelivery.delivery_id)
        )  # fmt: skip
        return [(status, (NOW - created) // DAY) for status, created in rows]


def test_old_and_surplus_finished_deliveries_go_and_the_queue_stays(db_uri: str) -> None:
    engine = _engine(db_uri)
    with Session(engine) as session, session.begin():
        old, busy = _webhook(session), _webhook(session)
        # Oldest first: two finished rows past 30 days, a pending one as old (a retry still due), recent ones.
        _deliveries(session, old, [("delivered", 40), ("failed", 35), ("pending", 40), ("delivered", 2), ("failed", 1)])
        _deliveries(session, busy, [("delivered", 1)] * 6 + [("sending", 0)])
    assert deliveries.prune(engine, keep_days=30, keep_rows=0, now_ms=NOW) == 2
    assert _left(engine, old) == [("pending", 40), ("delivered", 2), ("failed", 1)]
    assert deliveries.prune(engine, keep_days=30, keep_rows=4, now_ms=NOW) == 2  # busy: 6 finished -> the newest 4
    assert _left(engine, busy) == [("delivered", 1)] * 4 + [("sending", 0)]
    assert _left(engine, old) == [("pending", 40), ("delivered", 2), ("failed", 1)]
    assert deliveries.prune(engine, keep_days=0, keep_rows=0, now_ms=NOW) == 0  # both rules off
    assert deliveries.prune(engine, keep_days=30, keep_rows=4, now_ms=NOW) == 0  # idempotent


def test_gc_prunes_the_log_with_its_bounds(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'gc.db'}"
    engine = _engine(uri)
    with Session(engine) as session, session.begin():
        webhook_id = _webhook(session)
        _deliveries(session, webhook_id, [("delivered", 400), ("delivered", 3), ("delivered", 2), ("delivered", 1)])
    args = ["gc", "--backend-store-uri", uri, "--artifacts-destination", str(tmp_path / "artifacts"), "--yes"]
    dry = CliRunner().invoke(main, [*args, "--dry-run"], catch_exceptions=False)
    assert dry.exit_code == 0 and "pruned" not in dry.output and len(_left(engine, webhook_id)) == 4
    done = CliRunner().invoke(main, [*args, "--webhook-log-rows", "2"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert "2 webhook deliveries pruned from the log" in done.output  # the 400-day-old one and the 3-day-old one
    assert [age for _, age in _left(engine, webhook_id)] == [2, 1]


def test_the_api_refuses_webhook_targets_the_guard_forbids(tmp_path: Path) -> None:
    def create(client: TestClient, url: str) -> int:
        return client.post("/api/2.0/modelyard/webhooks/create", json={"name": "x", "url": url}).status_code

    for allow, expected in ((False, {"metadata": 400, "loopback": 400, "public": 200}),
                            (True, {"metadata": 400, "loopback": 200, "public": 200})):  # fmt: skip
        settings = Settings(backend_store_uri=f"sqlite:///{tmp_path / f'{allow}.db'}", artifacts_destination=str(tmp_path),
                            webhook_delivery=False, webhook_allow_private=allow)  # fmt: skip
        with TestClient(create_app(settings), base_url="http://localhost") as client:
            got = {
                "metadata": create(client, "http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
                "loopback": create(client, "http://127.0.0.1:9000/hook"),
                "public": create(client, "https://hooks.example.com/modelyard"),
            }
        assert got == expected, allow
