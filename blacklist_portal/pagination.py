"""Pagination without COUNT(*): on a table of millions of rows the count costs more than the
page. We fetch one row more than a page to know whether there is a next one."""

from dataclasses import dataclass

from django.db.models import QuerySet


@dataclass
class CheapPage:
    object_list: list
    number: int
    has_next: bool

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self):
        return len(self.object_list)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous

    def next_page_number(self) -> int:
        return self.number + 1

    def previous_page_number(self) -> int:
        return self.number - 1


def cheap_page(queryset: QuerySet, page: str | None, *, per_page: int = 50) -> CheapPage:
    try:
        number = max(1, int(page or 1))
    except ValueError:
        number = 1
    number = min(number, 10_000)  # bound the OFFSET
    start = (number - 1) * per_page
    rows = list(queryset[start : start + per_page + 1])
    return CheapPage(rows[:per_page], number, len(rows) > per_page)
