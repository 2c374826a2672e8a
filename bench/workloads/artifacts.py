"""Artifacts through each proxy vs boto3 straight to the same moto S3 (the ceiling).

One large file up and down (streamed, as MLflow's client does for a non-multipart upload), many
small files down with 4 clients, and the peak RSS of the proxy's process tree while it streams.
Downloads are also timed the two ways the real mlflow client takes them from modelyard's artifacts
service (`client_download`): with presigned downloads on (it asks the service for each file's URL,
then reads the file from S3 itself) and through the proxy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import copy_proxy
from bench.httpc import Conn, HttpError
from bench.measure import RssSampler, Sample, run_threads, timed
from bench.rows import Row, alternate, both, cpu_detail, med
from bench.stack import BUCKET, BenchStack, Side

ART = "/api/2.0/mlflow-artifacts/artifacts"
CHUNK = 1 << 20
#: Rounds of the big download for the sides that take a fraction of a second, per repeat.
FAST_ROUNDS_PER_REPEAT = 3


def _upload(conn: Conn, path: str, file: Path) -> None:
    size = file.stat().st_size
    with open(file, "rb") as f:
        status, data = conn.request(
            "PUT", path, f, {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        )  # type: ignore[arg-type]
    if status != 200:
        raise HttpError(status, data, f"PUT {path}")


def _download(conn: Conn, path: str, dest: Path) -> int:
    """Stream the body to `dest` in 1 MiB reads (bounded client memory, like a real client)."""
    c = conn._connection()
    c.request("GET", path)
    response = c.getresponse()
    if response.status != 200:
        raise HttpError(response.status, response.read(), f"GET {path}")
    total = 0
    with open(dest, "wb") as f:
        while chunk := response.read(CHUNK):
            f.write(chunk)
            total += len(chunk)
    return total


#: The mlflow client's two ways to a file of modelyard's artifacts service: presigned (the URL from the
#: service, the bytes from S3) and proxied (the bytes through the service, as with presigned downloads off).
CLIENT_WAYS = ("client-presigned", "client-proxied")


def client_download(way: str, artifacts_url: str) -> Callable[[str, str], None]:
    """`download(remote_path, local_path)` by the real mlflow client's repository for modelyard's artifacts
    root, as `mlflow.artifacts` builds it for an `mlflow-artifacts:/` location; the artifacts service
    answers its /server-info probe itself (the bench's tracking service beside it says the same)."""
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository
    from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

    repo = MlflowArtifactsRepository("mlflow-artifacts:/", tracking_uri=artifacts_url)
    if not repo._is_multipart_download_enabled():
        raise AssertionError("modelyard's artifacts service does not offer presigned downloads")
    if way == "client-presigned":
        return repo._download_file  # type: ignore[no-any-return]
    return lambda remote, local: HttpArtifactRepository._download_file(repo, remote, local)


def _copied(conn: Conn, dest: Path) -> None:
    """The direct object through the bare copy loop (`bench/copy_proxy.py`), read as the proxies are."""
    _download(conn, f"/{BUCKET}/direct/big.bin", dest)


def big_file(stack: BenchStack, sides: list[Side], work: Path, size_mb: int, repeats: int) -> list[Row]:
    size = size_mb * 2**20
    src = work / "big.bin"
    with open(src, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(2**20))
    s3 = stack.s3.client()
    direct = Side("direct", "", "", [], "", "direct")
    peaks: dict[str, float] = {s.name: 0.0 for s in sides}

    def put_stream() -> None:
        with open(src, "rb") as f:
            s3.put_object(Bucket=BUCKET, Key="direct/big-stream.bin", Body=f)

    def get_stream(dest: Path) -> None:
        body = s3.get_object(Bucket=BUCKET, Key="direct/big.bin")["Body"]
        with open(dest, "wb") as f:
            while chunk := body.read(CHUNK):
                f.write(chunk)

    def up(side: Side, r: int) -> Sample:
        if side.name == "direct":
            return timed([], 1, lambda: s3.upload_file(str(src), BUCKET, "direct/big.bin"))
        if side.name == "direct-stream":
            return timed([], 1, put_stream)
        with Conn(side.artifacts_url, blocksize=CHUNK) as conn:
            sampler = RssSampler(side.artifact_pids)
            with sampler.running():
                sample = timed(side.artifact_pids, 1, lambda: _upload(conn, f"{ART}/big/big-{r}.bin", src))
        peaks[side.name] = max(peaks[side.name], sampler.peak / 2**20)
        return sample

    def down(side: Side, r: int) -> Sample:
        dest = work / f"down-{side.name}.bin"
        try:
            if side.name == "direct":
                return timed([], 1, lambda: s3.download_file(BUCKET, "direct/big.bin", str(dest)))
            if side.name == "direct-stream":
                return timed([], 1, lambda: get_stream(dest))
            if side.name in CLIENT_WAYS:
                get = client_download(side.name, side.artifacts_url)
                sample = timed(side.artifact_pids, 1, lambda: get("big/big-0.bin", str(dest)))
                if dest.stat().st_size != size:
                    raise AssertionError(f"{side.name}: downloaded {dest.stat().st_size} of {size} bytes")
                return sample
            if side.name == "copy-loop":
                with Conn(side.artifacts_url, blocksize=CHUNK) as conn:
                    sample = timed(side.artifact_pids, 1, lambda: _copied(conn, dest))
                if dest.stat().st_size != size:
                    raise AssertionError(f"copy loop: downloaded {dest.stat().st_size} of {size} bytes")
                return sample
            with Conn(side.artifacts_url, blocksize=CHUNK) as conn:
                sampler = RssSampler(side.artifact_pids)
                with sampler.running():
                    sample = timed(
                        side.artifact_pids, 1, lambda: _download(conn, f"{ART}/big/big-0.bin", dest) and None
                    )
            if dest.stat().st_size != size:
                raise AssertionError(f"{side.name}: downloaded {dest.stat().st_size} of {size} bytes")
            peaks[side.name] = max(peaks[side.name], sampler.peak / 2**20)
            return sample
        finally:
            dest.unlink(missing_ok=True)

    everyone = [*sides, direct, Side("direct-stream", "", "", [], "", "direct")]
    ups = alternate(everyone, repeats, up)
    moto_port = int(stack.s3.endpoint.rsplit(":", 1)[1].strip("/"))
    clients = _client_sides(sides)
    with copy_proxy.running(moto_port) as (copy_url, copy_pid):
        copy_loop = Side("copy-loop", "", copy_url, [], "", "direct", artifact_pids=[copy_pid])
        downs = alternate([*everyone, copy_loop, *clients], repeats, down)
        # The share-of-direct rows divide two medians of ~0.2-0.3 s downloads whose spread is wide here
        # (moto's time to first byte alone varies by ~100 ms): the fast sides get FAST_ROUNDS_PER_REPEAT
        # times the rounds (seconds; MLflow's and the transfer manager's ~3 s downloads keep `repeats`).
        fast = [side for side in everyone if side.name in ("modelyard", "direct-stream")] + [copy_loop, *clients]
        for name, extra in alternate(fast, (FAST_ROUNDS_PER_REPEAT - 1) * repeats, down).items():
            downs[name] += extra
    src.unlink()
    mbps = lambda s: size / s.wall / 1e6  # noqa: E731
    ml_up, my_up = both(ups, mbps)
    ml_dn, my_dn = both(downs, mbps)
    # The ceiling is the faster way straight to S3: boto3's transfer manager (parallel parts/ranges)
    # or one streamed PUT/GET. Against moto the single stream wins by far (moto serves each ranged
    # GET by reading the whole object), against AWS S3 usually the parallel transfer.
    direct_modes = {"transfer manager": ("direct",), "single stream": ("direct-stream",)}
    d_up_by = {m: med(ups[n[0]], mbps) for m, n in direct_modes.items()}
    d_dn_by = {m: med(downs[n[0]], mbps) for m, n in direct_modes.items()}
    d_up, d_dn = max(d_up_by.values()), max(d_dn_by.values())
    c_dn = med(downs["copy-loop"], mbps)
    p_dn, q_dn = (med(downs[way], mbps) for way in CLIENT_WAYS)
    return [
        Row(
            f"proxy upload {size_mb} MB",
            "MB/s",
            ml_up,
            my_up,
            True,
            detail={**cpu_detail(ups, "file"), "direct_s3_MBps": d_up_by},
        ),
        Row(
            f"proxy upload {size_mb} MB, % of direct S3 ({d_up:.0f} MB/s)",
            "%",
            100 * ml_up / d_up,
            100 * my_up / d_up,
            True,
            ">= 80%",
            lambda a, b: b >= 80,
        ),  # fmt: skip
        Row(
            f"proxy download {size_mb} MB",
            "MB/s",
            ml_dn,
            my_dn,
            True,
            detail={**cpu_detail(downs, "file"), "direct_s3_MBps": d_dn_by},
        ),
        Row(
            f"proxy download {size_mb} MB, % of direct S3 ({d_dn:.0f} MB/s)",
            "%",
            100 * ml_dn / d_dn,
            100 * my_dn / d_dn,
            True,
            ">= 90% (#21)",
            lambda a, b: b >= 90,
        ),  # fmt: skip
        Row(
            f"proxy download {size_mb} MB, % of a bare copy loop through the same S3 ({c_dn:.0f} MB/s)",
            "%",
            100 * ml_dn / c_dn,
            100 * my_dn / c_dn,
            True,
            note="bench/copy_proxy.py: the ceiling of any proxy that copies the bytes, on this machine",
            detail={"copy_loop_cpu_ms_per_file": round(med(downs["copy-loop"], lambda x: 1000 * x.cpu), 1)},
        ),  # fmt: skip
        Row(
            f"download {size_mb} MB by the mlflow client through presigned URLs, % of direct S3 ({d_dn:.0f} MB/s)",
            "%",
            None,
            100 * p_dn / d_dn,
            True,
            note=f"{p_dn:.0f} MB/s, off by default; the same client through the proxy: {q_dn:.0f} MB/s "
            f"({100 * q_dn / d_dn:.0f}%)",
            detail=cpu_detail({way: downs[way] for way in CLIENT_WAYS}, "file"),
            alone=True,
        ),  # fmt: skip
        Row(
            f"proxy peak RSS during {size_mb} MB transfers",
            "MB",
            peaks["mlflow"],
            peaks["modelyard"],
            False,
            note="MLflow: whole server (tracking+proxy); modelyard: artifacts service",
        ),  # fmt: skip
    ]


def _client_sides(sides: list[Side]) -> list[Side]:
    """The mlflow client's ways to modelyard's artifacts service, as sides (CPU: the artifacts service's)."""
    mine = next(side for side in sides if side.name == "modelyard")
    return [Side(way, "", mine.artifacts_url, [], "", mine.s3_prefix, artifact_pids=mine.artifact_pids) for way in CLIENT_WAYS]


def small_files(
    stack: BenchStack, sides: list[Side], count: int, repeats: int, clients: int = 4
) -> list[Row]:
    s3 = stack.s3.client()
    body = os.urandom(10 * 1024)
    keys = [f"small/f{i:05d}.bin" for i in range(count)]
    with ThreadPoolExecutor(8) as pool:
        for prefix in ("mlflow", "modelyard", "direct"):
            list(pool.map(lambda k, p=prefix: s3.put_object(Bucket=BUCKET, Key=f"{p}/{k}", Body=body), keys))
    direct = Side("direct", "", "", [], "", "direct")
    shards = [keys[i::clients] for i in range(clients)]

    def fetch(conn: Conn, key: str) -> None:
        status, data = conn.request("GET", f"{ART}/{key}")
        if status != 200 or len(data) != len(body):
            raise HttpError(status, data[:200], f"GET {key}")

    def run(side: Side, r: int) -> Sample:
        if side.name == "direct":  # boto3's pool is already connected (the uploads above)
            return timed(side.artifact_pids, count, lambda: run_threads(clients, direct_worker) and None)
        if side.name in CLIENT_WAYS:
            gets = [client_download(side.name, side.artifacts_url) for _ in range(clients)]
            for get, shard in zip(gets, shards, strict=True):  # warm, as the other sides' connections
                client_fetch(get, shard[0])

            def client_worker(i: int) -> None:
                for key in shards[i]:
                    client_fetch(gets[i], key)

            return timed(side.artifact_pids, count, lambda: run_threads(clients, client_worker) and None)
        # Each client's connection is opened and used once before the clock starts, as the direct side's
        # pooled client already is: the timed part compares serving files, not connection set-up.
        conns = [Conn(side.artifacts_url) for _ in range(clients)]
        try:
            for conn, shard in zip(conns, shards, strict=True):
                fetch(conn, shard[0])

            def worker(i: int) -> None:
                for key in shards[i]:
                    fetch(conns[i], key)

            return timed(side.artifact_pids, count, lambda: run_threads(clients, worker) and None)
        finally:
            for conn in conns:
                conn.close()

    def direct_worker(i: int) -> None:
        for key in shards[i]:
            assert len(s3.get_object(Bucket=BUCKET, Key=f"direct/{key}")["Body"].read()) == len(body)

    def client_fetch(get: Callable[[str, str], None], key: str) -> None:
        local = scratch / f"{threading.get_ident()}-{key.replace('/', '_')}"
        get(key, str(local))
        assert local.stat().st_size == len(body), key
        local.unlink()

    scratch = Path(tempfile.mkdtemp(prefix="bench-client-"))
    try:
        samples = alternate([*sides, direct, *_client_sides(sides)], repeats, run)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    fps = lambda s: s.count / s.wall  # noqa: E731
    ml, my = both(samples, fps)
    d = sorted(fps(s) for s in samples["direct"])[len(samples["direct"]) // 2]
    p, q = (med(samples[way], fps) for way in CLIENT_WAYS)
    return [
        Row(
            f"{count:,} x 10 KB download, {clients} clients",
            "files/s",
            ml,
            my,
            True,
            detail={**cpu_detail(samples, "file"), "direct_s3_files_per_s": d},
        ),  # fmt: skip
        Row(
            f"{count:,} x 10 KB download, % of direct S3 ({d:.0f} files/s)",
            "%",
            100 * ml / d,
            100 * my / d,
            True,
            ">= 90% (#21)",
            lambda a, b: b >= 90,
        ),  # fmt: skip
        Row(
            f"{count:,} x 10 KB by the mlflow client through presigned URLs, % of direct S3 ({d:.0f} files/s)",
            "%",
            None,
            100 * p / d,
            True,
            note=f"{p:.0f} files/s, two requests a file; the same client through the proxy: {q:.0f} files/s ({100 * q / d:.0f}%)",
            detail=cpu_detail({way: samples[way] for way in CLIENT_WAYS}, "file"),
            alone=True,
        ),  # fmt: skip
    ]
