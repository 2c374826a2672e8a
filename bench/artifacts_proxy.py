"""Artifacts proxy throughput vs boto3 straight to the same S3 endpoint (moto's server on loopback).

    .venv/bin/python bench/artifacts_proxy.py [--size-mb 200] [--small 1000] [--rounds 3]

Prints MB/s for one large file up and down through the artifacts service (gunicorn, 1 worker, S3
destination, plain streamed PUT so every byte crosses the proxy) and through boto3 direct (the
ceiling), their ratio, and files/s for many small files through the proxy. Rounds alternate proxy and
direct so machine load affects both alike; the median is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelyard.devstack.process import free_port  # noqa: E402
from modelyard.devstack.s3 import DUMMY_AWS_ENV, S3Server  # noqa: E402
from modelyard.devstack.services import ARTIFACTS, GunicornService  # noqa: E402


def _mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(DUMMY_AWS_ENV)
    os.environ["MODELYARD_MULTIPART_UPLOAD_MIN_SIZE"] = str(10**15)
    from boto3.s3.transfer import TransferConfig

    from modelyard.artifact_repos.http import HttpArtifactRepository

    with tempfile.TemporaryDirectory(prefix="bench-artifacts-") as tmp_dir:
        tmp = Path(tmp_dir)
        s3 = S3Server(free_port(), tmp / "moto.log", tied_to_parent=True)
        s3.start()
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(bucket)
        env = {
            "MODELYARD_ARTIFACTS_DESTINATION": f"s3://{bucket}/proxy",
            "MODELYARD_S3_ENDPOINT_URL": s3.endpoint,
        }
        service = GunicornService(
            ARTIFACTS, free_port(), tmp / "artifacts.log", env=env, workers=1, tied_to_parent=True
        )
        service.start()
        try:
            size = args.size_mb * 1024 * 1024
            big = tmp / "big.bin"
            with open(big, "wb") as f:
                for _ in range(args.size_mb):
                    f.write(os.urandom(1024 * 1024))
            repo = HttpArtifactRepository(f"{service.url}/api/2.0/mlflow-artifacts/artifacts/run")
            client = s3.client()
            config = TransferConfig(
                multipart_threshold=8 * 2**20, multipart_chunksize=8 * 2**20, max_concurrency=10
            )
            results: dict[str, list[float]] = {
                "proxy up": [],
                "proxy down": [],
                "direct up": [],
                "direct down": [],
            }
            for r in range(args.rounds):
                t = time.perf_counter()
                repo.log_artifact(str(big))
                results["proxy up"].append(_mbps(size, time.perf_counter() - t))
                t = time.perf_counter()
                repo.download_artifacts("big.bin", str(tmp / f"p{r}"))
                results["proxy down"].append(_mbps(size, time.perf_counter() - t))
                t = time.perf_counter()
                client.upload_file(str(big), bucket, "direct/big.bin", Config=config)
                results["direct up"].append(_mbps(size, time.perf_counter() - t))
                t = time.perf_counter()
                client.download_file(bucket, "direct/big.bin", str(tmp / f"d{r}.bin"), Config=config)
                results["direct down"].append(_mbps(size, time.perf_counter() - t))
                for p in (tmp / f"p{r}" / "big.bin", tmp / f"d{r}.bin"):
                    p.unlink()
            med = {k: statistics.median(v) for k, v in results.items()}
            for key, value in med.items():
                print(f"{key:12s} {value:8.1f} MB/s  (rounds: {', '.join(f'{x:.1f}' for x in results[key])})")
            print(f"upload ratio proxy/direct   {med['proxy up'] / med['direct up']:.0%}")
            print(f"download ratio proxy/direct {med['proxy down'] / med['direct down']:.0%}")

            small_dir = tmp / "small"
            small_dir.mkdir()
            for i in range(args.small):
                (small_dir / f"f{i:04d}.txt").write_bytes(os.urandom(1024))
            t = time.perf_counter()
            repo.log_artifacts(str(small_dir), "small")
            up = time.perf_counter() - t
            t = time.perf_counter()
            repo.download_artifacts("small", str(tmp / "small-down"))
            down = time.perf_counter() - t
            print(
                f"{args.small} small files: upload {args.small / up:.0f} files/s, download {args.small / down:.0f} files/s"
            )
        finally:
            service.stop()
            s3.stop()


if __name__ == "__main__":
    main()
