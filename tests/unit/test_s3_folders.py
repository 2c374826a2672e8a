"""The pure logic of `artifact_repos.s3_folders`: DeleteObjects chunking, and which folders share a range."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.artifact_repos import s3_folders
from modelyard.exceptions import ModelyardException


class _RecordingClient:
    """Records DeleteObjects calls; answers with `errors` for the first call if given."""

    def __init__(self, errors: list[dict[str, str]] | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.errors = errors

    def delete_objects(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"Errors": self.errors} if self.errors else {}


def test_chunked() -> None:
    assert [len(c) for c in s3_folders.chunked(range(2500), 1000)] == [1000, 1000, 500]
    assert list(s3_folders.chunked([], 1000)) == []
    assert list(s3_folders.chunked("abc", 3)) == [["a", "b", "c"]]


def test_deletes_go_1000_keys_a_call_across_folders() -> None:
    keys = [f"exp/{run:04d}/artifacts/f{i}" for run in range(250) for i in range(10)]
    client = _RecordingClient()
    s3_folders.delete_keys(client, "b", keys)
    assert [len(call["Delete"]["Objects"]) for call in client.calls] == [1000, 1000, 500]
    assert [o["Key"] for call in client.calls for o in call["Delete"]["Objects"]] == keys
    assert all(call["Bucket"] == "b" and call["Delete"]["Quiet"] for call in client.calls)


def test_a_key_s3_refuses_fails_the_delete() -> None:
    client = _RecordingClient([{"Key": "exp/r/artifacts/f", "Code": "AccessDenied", "Message": "no"}])
    with pytest.raises(ModelyardException, match="S3 refused 1 of 2 keys .AccessDenied"):
        s3_folders.delete_keys(client, "b", ["exp/r/artifacts/f", "exp/r/artifacts/g"])


def test_folders_with_one_parent_form_a_range() -> None:
    folders = ["a/1/r2/artifacts", "a/1/r1/artifacts", "a/1/models/m1/artifacts", "a/2/r3/artifacts", "flat", "x/y", ""]
    ranges, alone = s3_folders._plan(folders)
    assert ranges == [[(1, "a/1/r1/artifacts"), (0, "a/1/r2/artifacts")]]
    assert sorted(alone) == [(2, "a/1/models/m1/artifacts", ""), (3, "a/2/r3/artifacts", ""), (4, "flat", ""),
                             (5, "x/y", ""), (6, "", "")]  # fmt: skip


def test_names_that_share_no_first_character_are_split_by_it() -> None:
    """Each range's Prefix then covers 1/16 of the parent's keys (S3 stand-ins scan all under it per page)."""
    folders = [f"e/1/{run}/artifacts" for run in ("3f01", "3f02", "4001", "4002", "4003", "a001")]
    ranges, alone = s3_folders._plan(folders)
    assert [[i for i, _ in group] for group in ranges] == [[0, 1], [2, 3, 4]] and alone == [(5, folders[5], "")]


def test_owns() -> None:
    assert s3_folders.owns("e/r/artifacts", "e/r/artifacts/f") and s3_folders.owns("e/r/artifacts", "e/r/artifacts")
    assert not s3_folders.owns("e/r/artifacts", "e/r/artifacts-2/f") and not s3_folders.owns("e/r/artifacts", "e/r/x")
    assert s3_folders.owns("", "anything")
