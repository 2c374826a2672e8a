"""`python -m bench.auth [--requests N] [--repeats R]`: what auth costs (issue #17's targets).

1. log-metric with auth off vs on: two modelyard tracking services (gunicorn, same worker count) on one
   PostgreSQL, one keep-alive client each, repeats interleaved A/B/B/A so a noisy machine's drift hits
   both sides alike. Auth on is measured as a normal user (no admin bypass: the run's experiment and the
   user's grants are looked up through the caches), once with basic auth (the user's password, what
   MLFLOW_TRACKING_USERNAME/PASSWORD send) and once with a bearer token. Reported: median req/s and the
   server trees' CPU per request. Target: auth on within 10% of off.
2. The credential check itself, in process: `identify()` on a password (the first: argon2id) and then on
   the cached credential, and on a bearer token; target < 1 ms per check after the first.
Writes bench/results/auth.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.httpc import Conn
from bench.measure import Sample, timed
from bench.workloads.common import API, create_experiment, create_run, now_ms
from modelyard.devstack import GunicornService, PostgresServer, free_port
from modelyard.devstack.services import TRACKING

RESULTS = Path(__file__).parent / "results" / "auth.json"
ADMIN = ("admin", "bench-admin-password")
USER = ("bench", "bench-user-password")
WARM_UP = 20


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _start(pg: PostgresServer, name: str, logs: Path, workers: int, auth: bool) -> GunicornService:
    from modelyard.store.sql.migrate import upgrade

    uri = pg.create_database(name)
    upgrade(uri)
    env = {"MODELYARD_BACKEND_STORE_URI": uri, "MODELYARD_SERVE_ARTIFACTS": "false", "MODELYARD_WEBHOOK_DELIVERY": "false"}
    if auth:
        env.update(
            MODELYARD_AUTH="true",
            MODELYARD_ADMIN_USERNAME=ADMIN[0],
            MODELYARD_ADMIN_PASSWORD=ADMIN[1],
            MODELYARD_AUTH_DEFAULT_PERMISSION="NO_PERMISSIONS",
        )
    service = GunicornService(TRACKING, free_port(), logs / f"{name}.log", env=env, workers=workers, tied_to_parent=True)
    service.launch()
    service.wait_ready(timeout=180)
    return service


def _log_metric(conn: Conn, run_id: str, pids: list[int], requests: int, offset: int) -> Sample:
    ts = now_ms()
    bodies = [
        json.dumps({"run_id": run_id, "key": "loss", "value": i * 0.5, "timestamp": ts + i, "step": offset + i}).encode()
        for i in range(WARM_UP + requests)
    ]
    headers = {"Content-Type": "application/json"}
    for body in bodies[:WARM_UP]:
        conn.request("POST", f"{API}/runs/log-metric", body, headers)

    def go() -> None:
        for body in bodies[WARM_UP:]:
            status, data = conn.request("POST", f"{API}/runs/log-metric", body, headers)
            assert status == 200, data

    return timed(pids, requests, go)


def http_ab(requests: int, repeats: int, workers: int, logs: Path) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="modelyard-bench-auth-"))
    base.chmod(0o711)
    pg = PostgresServer(base / "pg", free_port(), durable=False, tied_to_parent=True)
    pg.start()
    services: list[GunicornService] = []
    try:
        off = _start(pg, "auth_off", logs, workers, auth=False)
        on = _start(pg, "auth_on", logs, workers, auth=True)
        services = [off, on]
        with Conn(on.url, headers=_basic(*ADMIN)) as admin:
            admin.call("POST", "/api/2.0/mlflow/users/create", {"username": USER[0], "password": USER[1]})
        user = Conn(on.url, headers=_basic(*USER))
        run_on = create_run(user, create_experiment(user, "auth"))  # the creator's MANAGE grant allows it
        token = user.call("POST", "/api/2.0/modelyard/tokens/create", {"name": "bench"})["token"]["token"]
        bearer = Conn(on.url, headers={"Authorization": f"Bearer {token}"})
        plain = Conn(off.url)
        run_off = create_run(plain, create_experiment(plain, "auth"))
        sides = {
            "off": (plain, run_off, [off.pid or 0]),
            "on (basic)": (user, run_on, [on.pid or 0]),
            "on (bearer)": (bearer, run_on, [on.pid or 0]),
        }
        samples: dict[str, list[Sample]] = {name: [] for name in sides}
        step = 0
        for r in range(repeats):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for name in order:
                conn, run_id, pids = sides[name]
                samples[name].append(_log_metric(conn, run_id, pids, requests, step))
                step += WARM_UP + requests
        for conn, _, _ in sides.values():
            conn.close()
        out: dict[str, Any] = {}
        for name, runs in samples.items():
            out[name] = {
                "req_per_s": statistics.median(s.count / s.wall for s in runs),
                "cpu_us_per_req": statistics.median(1e6 * s.cpu / s.count for s in runs),
                "req_per_s_each": [round(s.count / s.wall) for s in runs],
            }
        return out
    finally:
        for service in services:
            service.stop()
        pg.stop()
        pg.remove()


def credential_check(calls: int) -> dict[str, float]:
    """`identify()` in process, on SQLite: the first check of a password, then cached checks."""
    from modelyard.auth import accounts, tokens
    from modelyard.auth.context import AuthContext
    from modelyard.auth.identify import identify
    from modelyard.entities.auth import CLI
    from modelyard.store.sql.engine import create_engine_for
    from modelyard.store.sql.migrate import upgrade

    engine = create_engine_for(f"sqlite:///{tempfile.mkdtemp()}/auth.db")
    upgrade(engine)
    ctx = AuthContext.open(engine)
    user = accounts.create_user(ctx, USER[0], USER[1], CLI)
    token = tokens.create(ctx, user, "bench", CLI).secret or ""
    scope = {"type": "http", "client": ("127.0.0.1", 5000)}
    basic = {b"authorization": _basic(*USER)["Authorization"].encode()}
    bearer = {b"authorization": f"Bearer {token}".encode()}

    async def measure() -> dict[str, float]:
        t0 = time.perf_counter()
        await identify(ctx, scope, basic)
        first = time.perf_counter() - t0
        await identify(ctx, scope, bearer)
        out = {"first_password_check_ms": 1000 * first}
        for name, headers in (("basic", basic), ("bearer", bearer)):
            t0 = time.perf_counter()
            for _ in range(calls):
                await identify(ctx, scope, headers)
            out[f"cached_{name}_check_us"] = 1e6 * (time.perf_counter() - t0) / calls
        return out

    try:
        return asyncio.run(measure())
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.auth", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="timed log-metric requests per repeat and side")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    logs = RESULTS.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    check = credential_check(20_000)
    print(json.dumps(check, indent=2), flush=True)
    ab = http_ab(args.requests, args.repeats, args.workers, logs)
    off = ab["off"]
    print(f"{'log-metric, 1 keep-alive client':<34}{'req/s':>10}{'CPU us/req':>12}  vs off")
    for name, row in ab.items():
        ratio = row["req_per_s"] / off["req_per_s"]
        print(f"  auth {name:<27}{row['req_per_s']:>10.0f}{row['cpu_us_per_req']:>12.0f}  {ratio:6.1%}  {row['req_per_s_each']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"credential_check": check, "log_metric": ab, "args": vars(args)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
