"""A list that also carries the opaque token of the next page (None on the last page)."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class PagedList(list, Generic[T]):  # type: ignore[type-arg]
    def __init__(self, items: list[T] | tuple[T, ...] = (), token: str | None = None) -> None:
        super().__init__(items)
        self.token = token
