"""Model registry: register many versions across many models, then time the two reads clients use most,
and a page of 100 registered models and of 100 experiments (what the UI and `search_*(max_results=100)` ask)."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from bench.httpc import Conn
from bench.measure import percentile, run_threads, timed
from bench.rows import Row, alternate, both, cpu_detail, cpu_row
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
    pages = _search_pages(sides, conns, names, repeats, requests)
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
        *pages,
    ]


PAGE = 100
#: What the mlflow client sends for `search_registered_models(max_results=100)`.
MODELS_PAGE = {"max_results": PAGE, "filter": "tags.`mlflow.prompt.is_prompt` != 'true'"}


def _search_pages(sides: list[Side], conns: dict[str, Conn], names: list[str], repeats: int,
                  requests: int) -> list[Row]:  # fmt: skip
    """A page of 100 registered models (each with a tag, versions in two stages and an alias) and a
    page of 100 experiments (with two tags each): requests/s of one client, p50, server CPU."""
    for side in sides:
        conn = conns[side.name]
        run_id = create_run(conn, create_experiment(conn, "registry-pages"))
        root = conn.call("GET", f"{API}/runs/get?run_id={run_id}")["run"]["info"]["artifact_uri"]
        for i in range(PAGE):
            name = f"bench-page-{i:04d}"
            tags = [{"key": "team", "value": "bench"}]
            conn.call("POST", f"{API}/registered-models/create", {"name": name, "tags": tags})
            for v in range(2):
                conn.call("POST", f"{API}/model-versions/create",
                          {"name": name, "source": f"{root}/models/{name}/{v}", "run_id": run_id})  # fmt: skip
            conn.call("POST", f"{API}/model-versions/transition-stage",
                      {"name": name, "version": "1", "stage": "Production"})  # fmt: skip
            conn.call("POST", f"{API}/registered-models/alias", {"name": name, "alias": "champion", "version": "2"})
            tags = [{"key": "team", "value": "bench"}, {"key": "mlflow.note.content", "value": f"experiment {i}"}]
            conn.call("POST", f"{API}/experiments/create", {"name": f"bench-page-{i:04d}", "tags": tags})
    rows = []
    # MLflow serves registered-models/search as GET only (the mlflow client's way), experiments/search as POST.
    for label, method, path, body, key in (
        (f"registered-models/search, page of {PAGE}", "GET", f"registered-models/search?{urlencode(MODELS_PAGE)}",
         None, "registered_models"),
        (f"experiments/search, page of {PAGE}", "POST", "experiments/search", {"max_results": PAGE}, "experiments"),
    ):  # fmt: skip

        def run(side: Side, r: int, method: str = method, path: str = path, body: object = body,  # type: ignore[no-untyped-def]
                key: str = key):  # fmt: skip
            conn = conns[side.name]

            def go() -> list[float]:
                lat = []
                for _ in range(requests):
                    t = time.perf_counter()
                    answer = conn.call(method, f"{API}/{path}", body)
                    lat.append(time.perf_counter() - t)
                assert len(answer.get(key, [])) == PAGE, answer
                return lat

            return timed(side.pids, requests, go)

        samples = alternate(sides, repeats, run)
        ml, my = both(samples, lambda s: s.count / s.wall)
        p50 = {n: 1000 * percentile([x for s in ss for x in s.latencies], 50) for n, ss in samples.items()}
        target, check = (">= 5x MLflow", (lambda a, b: b >= 5 * a)) if key == "registered_models" else ("", None)
        rows.append(Row(f"{label}, 1 client", "req/s", ml, my, True, target, check, detail=cpu_detail(samples)))
        rows.append(Row(f"{label} p50", "ms", p50["mlflow"], p50["modelyard"], False))
        rows.append(cpu_row(label, samples))
    return rows
