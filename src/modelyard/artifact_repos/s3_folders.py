"""Many S3 folders listed, then deleted, together: how `modelyard gc` removes thousands of runs' files in
a few requests instead of several per run.

A folder is every key under `<folder>/` (and the key `<folder>` itself, a "folder object" some tools
write). Listing: folders with the same parent two levels up (a run's `<experiment>/<run id>/artifacts`,
a logged model's `<experiment>/models/<model id>/artifacts`) are listed as ONE key range:
ListObjectsV2 with `Prefix` their common prefix and `StartAfter` just below the first folder, stopped
past the last; each key goes to the folder it is under, keys in between that no folder owns (a live
run's) are passed over. A range that turns out sparse (as many pages as it has folders, and not done)
is finished folder by folder from where it stands, so it never costs much more than listing each folder
alone; a folder of another shape is listed alone. Per request this matters twice: real S3 charges and
waits per request, and S3 stand-ins (moto) scan the whole bucket for every listing.

Deleting: exactly the keys the listing found, 1,000 per DeleteObjects call across folders; a key
written after the listing stays (for the orphan sweep). The keys are kept only up to `KEEP_MAX` per
listing: beyond that the listing keeps none and the delete goes folder by folder, listing again page by
page, so memory stays bounded however large one folder is.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from modelyard import errors
from modelyard.artifact_repos.base import FolderListing
from modelyard.artifact_repos.s3_client import s3_errors
from modelyard.exceptions import ModelyardException

#: Keys per DeleteObjects call (S3's maximum) and per listed page (ListObjectsV2's maximum).
DELETE_CHUNK = 1000
PAGE_KEYS = 1000
#: Listings in flight at once (each waits on a round trip).
THREADS = 8
#: Keys per folder the first page of a range is sized for (a guess; later pages use what it found): a
#: range smaller than a page does not fetch a full page of the folders after it.
FIRST_PAGE_KEYS_PER_FOLDER = 16
#: Keys a listing keeps for the delete that follows it (~100 bytes each).
KEEP_MAX = 100_000
#: The character after "/": every key under `<folder>/` sorts below `<folder>` + this.
_PAST_SLASH = chr(ord("/") + 1)

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of at most `size`, in order."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def owns(folder: str, key: str) -> bool:
    """Whether `key` is part of `folder` (under it, or the folder object itself)."""
    return not folder or key == folder or key.startswith(folder + "/")


@dataclass
class _Found:
    """What one listing task found: counts per folder index, and the keys (None past `KEEP_MAX`)."""

    objects: dict[int, int] = field(default_factory=dict)
    bytes: dict[int, int] = field(default_factory=dict)
    keys: list[str] | None = field(default_factory=list)

    def add(self, index: int, folder: str, key: str, size: int) -> None:
        # Counted as `walk` counts: files under the folder; folder objects are deleted, not counted.
        if (not folder or key.startswith(folder + "/")) and not key.endswith("/"):
            self.objects[index] = self.objects.get(index, 0) + 1
            self.bytes[index] = self.bytes.get(index, 0) + size
        if self.keys is not None:
            self.keys.append(key)
            if len(self.keys) > KEEP_MAX:
                self.keys = None


#: One folder still to list on its own: (index, folder key, list only keys after this one, or "").
_Alone = tuple[int, str, str]


def list_folders(client: Any, bucket: str, folders: Sequence[str], paths: Sequence[str]) -> FolderListing:
    """Every key under each of `folders` (keys in `bucket`, without the trailing slash), as a listing
    of `paths` (the same folders as the repository names them)."""
    ranges, alone = _plan(folders)
    found: list[_Found] = []
    with ThreadPoolExecutor(THREADS) as pool:
        for result, rest in pool.map(lambda group: _list_range(client, bucket, group), ranges):
            found.append(result)
            alone += rest
        found += pool.map(lambda task: _list_alone(client, bucket, task), alone)
    listing = FolderListing(list(paths), [0] * len(folders), [0] * len(folders))
    keys: dict[str, None] | None = {}
    for result in found:
        for index, count in result.objects.items():
            listing.objects[index] += count
            listing.bytes[index] += result.bytes[index]
        if keys is not None and result.keys is not None and len(keys) + len(result.keys) <= KEEP_MAX:
            keys.update(dict.fromkeys(result.keys))  # a key of nested folders once
        else:
            keys = None
    listing.keys = list(keys) if keys is not None else None
    return listing


def _plan(folders: Sequence[str]) -> tuple[list[list[tuple[int, str]]], list[_Alone]]:
    """Folders grouped by their parent two levels up (groups of 2+ are ranges), and the rest alone. A
    group whose names share no first character is split by it (at most 16 ranges for hex ids): each
    range's Prefix then holds ~1/16 of the parent's keys instead of all of them, which is what an S3
    stand-in (moto) scans and sorts for every page."""
    by_parent: dict[str, list[tuple[int, str]]] = {}
    alone: list[_Alone] = []
    for index, folder in enumerate(folders):
        parts = folder.split("/")
        if len(parts) >= 3 and all(parts[-3:]):
            by_parent.setdefault("/".join(parts[:-2]), []).append((index, folder))
        else:
            alone.append((index, folder, ""))
    groups = []
    for parent, group in by_parent.items():
        names = sorted({folder[len(parent) + 1] for _, folder in group})
        groups += [[item for item in group if item[1][len(parent) + 1] == name] for name in names]
    ranges = []
    for group in groups:
        if len(group) == 1:
            alone.append((*group[0], ""))
        else:
            ranges.append(sorted(group, key=lambda item: item[1]))
    return ranges, alone


def _pages(client: Any, bucket: str, prefix: str, start_after: str) -> Iterator[dict[str, Any]]:
    paginator = client.get_paginator("list_objects_v2")
    extra = {"StartAfter": start_after} if start_after else {}
    with s3_errors(f"list {prefix}"):
        yield from paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": PAGE_KEYS}, **extra)


def _list_range(client: Any, bucket: str, group: list[tuple[int, str]]) -> tuple[_Found, list[_Alone]]:
    """One key range over a group's folders (sorted; same parent two levels up), and what is left for
    listing folder by folder if the range turned out sparse.

    Pages are sized for what is left (the first for `FIRST_PAGE_KEYS_PER_FOLDER` keys a folder, the next
    for the folders not finished at the keys per folder seen so far): the page that reaches the last
    folder does not bring a full page of the folders after it only to show where the range stops."""
    found = _Found()
    first, last = group[0][1], group[-1][1]
    parent = first.rsplit("/", 2)[0] + "/"
    by_name: dict[str, list[tuple[int, str]]] = {}
    for index, folder in group:
        by_name.setdefault(folder[len(parent) :].split("/", 1)[0], []).append((index, folder))
    stop = last + _PAST_SLASH
    first_page = min(PAGE_KEYS, 10 + FIRST_PAGE_KEYS_PER_FOLDER * len(group))
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": os.path.commonprefix([first, last]), "MaxKeys": first_page}
    if first[:-1]:
        request["StartAfter"] = first[:-1]
    pages = seen = 0
    while True:
        with s3_errors(f"list {request['Prefix']}"):
            page = client.list_objects_v2(**request)
        pages += 1
        contents = page.get("Contents", [])
        for obj in contents:
            key = obj["Key"]
            if key >= stop:
                return found, []
            for index, folder in by_name.get(key[len(parent) :].split("/", 1)[0], ()):
                if owns(folder, key):
                    found.add(index, folder, key, int(obj["Size"]))
        if not page.get("IsTruncated") or not contents:
            return found, []
        after = contents[-1]["Key"]
        unfinished = [(index, folder, after) for index, folder in group if folder + _PAST_SLASH > after]
        if pages >= len(group):
            return found, unfinished
        seen += len(contents)
        started = len(group) - sum(1 for _, folder, _ in unfinished if folder > after) or 1
        request["MaxKeys"] = min(PAGE_KEYS, 10 + (seen * len(unfinished) * 5) // (started * 4))
        request["ContinuationToken"] = page["NextContinuationToken"]
        request.pop("StartAfter", None)


def _list_alone(client: Any, bucket: str, task: _Alone) -> _Found:
    index, folder, after = task
    found = _Found()
    for page in _pages(client, bucket, folder, after):
        for obj in page.get("Contents", []):
            if owns(folder, obj["Key"]):
                found.add(index, folder, obj["Key"], int(obj["Size"]))
    return found


def delete_keys(client: Any, bucket: str, keys: Iterable[str]) -> None:
    """Exactly `keys`, `DELETE_CHUNK` per DeleteObjects call; a key S3 refuses fails the delete (the
    caller keeps its rows, and a re-run tries again)."""
    for chunk in chunked(keys, DELETE_CHUNK):
        delete_chunk(client, bucket, chunk)


def delete_chunk(client: Any, bucket: str, keys: list[str]) -> None:
    with s3_errors(f"delete {keys[0]}"):
        response = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
    refused = response.get("Errors") or []
    if refused:
        first = refused[0]
        raise ModelyardException(
            f"delete {first.get('Key')}: S3 refused {len(refused)} of {len(keys)} keys "
            f"({first.get('Code')}: {first.get('Message')})",
            errors.INTERNAL_ERROR,
        )
