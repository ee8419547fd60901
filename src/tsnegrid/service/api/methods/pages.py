"""Pages of a listing: ``page`` and ``per_page`` as both transports send them (proto3's 0
means unset: the first page, the default size)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from tsnegrid.errors import InputError

T = TypeVar("T")
DEFAULT_PER_PAGE = 30
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class Page:
    page: int
    per_page: int

    @classmethod
    def of(cls, page: int | None, per_page: int | None, most: int) -> Page:
        """The page asked for: 0 or absent is the default, ``per_page`` capped at ``most``."""
        page, per_page = page or 1, per_page or DEFAULT_PER_PAGE
        if not 1 <= page <= MAX_PAGE:
            raise InputError(f"page must be 1 to {MAX_PAGE:,}, not {page}")
        if per_page < 1:
            raise InputError(f"per_page must be at least 1, not {per_page}")
        return cls(page, min(per_page, most))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def fetch(self, session: Session, model: type[T], app_id: int, order: ColumnElement[Any],
              *filters: ColumnElement[bool]) -> tuple[list[T], dict[str, int]]:
        """This page of an app's rows of ``model`` (those matching ``filters``), and the
        pagination block."""
        where = and_(model.app_id == app_id, *filters)  # type: ignore[attr-defined]
        rows = list(session.scalars(select(model).where(where).order_by(order)
                                    .offset(self.offset).limit(self.per_page)))
        total = session.scalar(select(func.count()).select_from(model).where(where)) or 0
        return rows, {"page": self.page, "per_page": self.per_page, "total": total}
