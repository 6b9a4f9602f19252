"""One page of a staff list: its items, the total, and where the neighbours are."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class QueuePage:
    items: list
    total: int
    page: int
    per_page: int
    household_names: dict[int, str] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages
