"""Talking to S3: one boto3 client per configuration, S3 URIs, and S3 errors as MLflow error codes.

Configuration comes from the environment so the same code runs against AWS and a laptop stack:
`MODELYARD_S3_ENDPOINT_URL` (else MLflow's `MLFLOW_S3_ENDPOINT_URL`, else boto3's own
`AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`), `MODELYARD_S3_ADDRESSING_STYLE` (path-style by default
when an endpoint is set, which is what local S3 servers want), region and credentials from boto3's
usual chain. Connect timeouts are short and retries bounded so an unreachable S3 turns into
TEMPORARILY_UNAVAILABLE (503) within seconds instead of a hung request.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from modelyard import errors
from modelyard.exceptions import ModelyardException


def env_flag(name: str) -> bool:
    return (os.environ.get(name) or "false").strip().lower() in {"1", "true", "yes", "on"}


#: SHA-256 every request body into its SigV4 signature. Off by default: hashing was the largest CPU cost
#: per uploaded byte in the proxy (~1/4 of it). The headers (credentials, key, length) are signed either
#: way; the body is protected by TLS against AWS, and boto3's own defaults do not hash bodies over HTTPS.
PAYLOAD_SIGNING = env_flag("MODELYARD_S3_PAYLOAD_SIGNING")
_CLIENT_LOCK = threading.Lock()
_CLIENTS: dict[tuple[Any, ...], Any] = {}


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value or None


def s3_client_config() -> tuple[str | None, str | None, float, float]:
    """Endpoint, addressing style, connect and read timeouts. The read timeout bounds how long S3
    may stay silent on an open connection: a frozen S3 (accepting connections, never answering)
    then fails a request within seconds (x2 with the one retry) instead of hanging as long as S3 does."""
    endpoint = _env("MODELYARD_S3_ENDPOINT_URL") or _env("MLFLOW_S3_ENDPOINT_URL")
    style = _env("MODELYARD_S3_ADDRESSING_STYLE")
    if style is None and (endpoint or _env("AWS_ENDPOINT_URL_S3") or _env("AWS_ENDPOINT_URL")):
        style = "path"
    connect_timeout = float(_env("MODELYARD_S3_CONNECT_TIMEOUT") or 3)
    read_timeout = float(_env("MODELYARD_S3_READ_TIMEOUT") or 10)
    return endpoint, style, connect_timeout, read_timeout


def get_s3_client(endpoint_url: str | None = None) -> Any:
    """One boto3 client per configuration per process (boto3 clients are thread-safe). `endpoint_url`
    replaces the configured endpoint: presigned URLs are signed for the address clients will GET."""
    import boto3
    from botocore.config import Config

    endpoint, *rest = s3_client_config()
    key = (endpoint_url or endpoint, *rest, os.getpid(), _env("AWS_ACCESS_KEY_ID"), _env("AWS_DEFAULT_REGION"))
    with _CLIENT_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            endpoint, style, connect_timeout, read_timeout = key[0], key[1], key[2], key[3]
            config = Config(
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"max_attempts": 2, "mode": "standard"},
                s3={
                    "payload_signing_enabled": PAYLOAD_SIGNING,
                    **({"addressing_style": style} if style else {}),
                },
                max_pool_connections=32,
                # Presigned URLs (multipart parts, downloads) in SigV4, which every AWS region accepts; left
                # alone, botocore signs them in SigV2 for a custom endpoint or an unset region.
                signature_version="s3v4",
                # moto and older S3 clones reject the newer default checksum trailers on presigned parts.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            client = boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)
            _CLIENTS[key] = client
        return client


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3", "s3a") or not parsed.netloc:
        raise ModelyardException.invalid_parameter(f"Not an S3 URI: {uri!r}")
    return parsed.netloc, parsed.path.strip("/")


#: S3 error codes that blame what the client sent (parts of a multipart upload, mostly), not the server's
#: configuration: a 400 for the client, never a 500.
_REQUEST_FAULTS = frozenset(
    {
        "InvalidPart",
        "InvalidPartOrder",
        "EntityTooSmall",
        "InvalidArgument",
        "MalformedXML",
        "KeyTooLongError",
    }
)


@contextlib.contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """botocore errors -> ModelyardException with the code the client should see."""
    from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchKey", "404", "NotFound") or status == 404 and code != "NoSuchBucket":
            raise ModelyardException.not_found(f"{what}: not found") from exc
        if code == "NoSuchUpload":
            raise ModelyardException.invalid_parameter(f"{what}: unknown upload id") from exc
        if code in _REQUEST_FAULTS:
            raise ModelyardException.invalid_parameter(f"{what}: S3 refused the request ({code})") from exc
        if status is not None and int(status) >= 500 or code in ("SlowDown", "ServiceUnavailable"):
            raise ModelyardException(
                f"{what}: S3 unavailable ({code})", errors.TEMPORARILY_UNAVAILABLE
            ) from exc
        raise ModelyardException(f"{what}: S3 error {code}", errors.INTERNAL_ERROR) from exc
    except (ConnectionError, HTTPClientError) as exc:
        raise ModelyardException(f"{what}: S3 unreachable ({exc})", errors.TEMPORARILY_UNAVAILABLE) from exc
    except BotoCoreError as exc:
        raise ModelyardException(f"{what}: S3 client error ({exc})", errors.TEMPORARILY_UNAVAILABLE) from exc
