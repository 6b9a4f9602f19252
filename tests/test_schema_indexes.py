"""Every foreign key has an index leading with its columns (issue 15, "Scale").

Without one, each delete of the parent row scans the child table (ON DELETE CASCADE and
SET NULL, and the check of RESTRICT), and each join from the parent to its children too:
`enrolment_activities.activity_id` made the call list of an activity read every
enrolment of the commune at 100,000 households.
"""

from __future__ import annotations

import citoyens.models  # noqa: F401  (every model registered on the metadata)
from citoyens.extensions import db


def _leading_columns(table) -> list[tuple[str, ...]]:
    """The column lists an index can be searched by: indexes, unique constraints and the
    primary key, each by its leading columns."""
    lists = [tuple(c.name for c in table.primary_key.columns)]
    for index in table.indexes:
        names = tuple(getattr(c, "name", None) for c in index.expressions)
        lists.append(names)
    for constraint in table.constraints:
        if constraint.__class__.__name__ == "UniqueConstraint":
            lists.append(tuple(c.name for c in constraint.columns))
    return lists


def unindexed_foreign_keys(metadata=None) -> list[str]:
    missing = []
    for table in (metadata or db.metadata).sorted_tables:
        searchable = _leading_columns(table)
        for key in table.foreign_key_constraints:
            columns = tuple(c.name for c in key.columns)
            if not any(found[: len(columns)] == columns for found in searchable):
                missing.append(f"{table.name}.{','.join(columns)}")
    return missing


def test_every_foreign_key_has_an_index():
    assert unindexed_foreign_keys() == []


def test_the_check_sees_a_missing_index():
    from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, UniqueConstraint

    metadata = MetaData()
    Table("parents", metadata, Column("id", Integer, primary_key=True))
    child = Table(
        "children",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("parent_id", ForeignKey("parents.id")),
        Column("other_id", ForeignKey("parents.id"), index=True),
    )
    Table(
        "pairs",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("left_id", ForeignKey("parents.id")),  # leads the unique pair: searchable
        Column("right_id", ForeignKey("parents.id")),  # second in it: not searchable
        UniqueConstraint("left_id", "right_id"),
    )
    assert child.c.other_id.index
    assert unindexed_foreign_keys(metadata) == ["children.parent_id", "pairs.right_id"]
