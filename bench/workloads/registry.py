"""Model registry: register many versions across many models, then time the two reads clients use most."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from bench.httpc import Conn
from bench.measure import percentile, run_threads, timed
from bench.rows import Row, alternate, cpu_detail
from bench.stack import Side
from bench.workloads.common import API, create_experiment, create_run


def registry(sides: list[Side], models: int, versions_per_model: int, requests: int, repeats: int,
             clients: int = 8) -> list[Row]:  # fmt: skip
    names = [f"bench-model-{i:04d}" for i in range(models)]
    create = {}

    for side in sides:
        conns = [Conn(side.tracking_url) for _ in range(clients)]
        # Versions point into a run's artifacts, as `register_model("runs:/...")` leaves them.
        run_id = create_run(conns[0], create_experiment(conns[0], "registry"))
        artifact_uri = conns[0].call("GET", f"{API}/runs/get?run_id={run_id}")["run"]["info"]["artifact_uri"]

        def register(
            i: int, conns: list[Conn] = conns, run_id: str = run_id, root: str = artifact_uri
        ) -> None:
            conn = conns[i]
            for name in names[i::clients]:
                conn.call("POST", f"{API}/registered-models/create", {"name": name})
                for v in range(versions_per_model):
                    body = {"name": name, "source": f"{root}/models/{name}/{v}", "run_id": run_id}
                    conn.call("POST", f"{API}/model-versions/create", body)

        create[side.name] = timed(
            side.pids, models * (versions_per_model + 1), lambda: run_threads(clients, register) and None
        )
        for c in conns:
            c.close()

    conns = {s.name: Conn(s.tracking_url) for s in sides}
    target_name = names[len(names) // 2]

    def reads(path: str, method: str = "GET", payload: object = None):  # type: ignore[no-untyped-def]
        def run(side: Side, r: int):  # type: ignore[no-untyped-def]
            conn = conns[side.name]

            def go() -> list[float]:
                lat = []
                for _ in range(requests):
                    t = time.perf_counter()
                    answer = conn.call(method, path, payload)
                    lat.append(time.perf_counter() - t)
                assert answer.get("model_versions"), answer
                return lat

            return timed(side.pids, requests, go)

        return run

    query = urlencode({"filter": f"name='{target_name}'"})
    search = alternate(sides, repeats, reads(f"{API}/model-versions/search?{query}"))
    latest = alternate(
        sides, repeats, reads(f"{API}/registered-models/get-latest-versions", "POST", {"name": target_name})
    )
    for c in conns.values():
        c.close()
    total = models * versions_per_model
    p50 = lambda ss: 1000 * percentile([x for s in ss for x in s.latencies], 50)  # noqa: E731
    ml_c = create["mlflow"].count / create["mlflow"].wall
    my_c = create["modelyard"].count / create["modelyard"].wall
    return [
        Row(
            f"registry: create {models} models + {total:,} versions, {clients} clients",
            "req/s",
            ml_c,
            my_c,
            True,
            detail={
                "server_cpu_ms_per_request": {k: round(1000 * v.cpu / v.count, 3) for k, v in create.items()}
            },
        ),  # fmt: skip
        Row(
            f"model-versions/search name=... ({total:,} versions) p50",
            "ms",
            p50(search["mlflow"]),
            p50(search["modelyard"]),
            False,
            detail=cpu_detail(search),
        ),  # fmt: skip
        Row(
            "registered-models/get-latest-versions p50",
            "ms",
            p50(latest["mlflow"]),
            p50(latest["modelyard"]),
            False,
            detail=cpu_detail(latest),
        ),  # fmt: skip
    ]
