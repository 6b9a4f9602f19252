"""Many rows in one INSERT whose text does not grow with them (issue 15, the invoice run).

On PostgreSQL the rows go as one array per column: `INSERT … SELECT * FROM unnest(…)`,
one statement of a fixed shape whatever the count (a multi-row VALUES would bind one
parameter per value, be parsed anew for every count, and stop at 65,535 parameters;
psycopg's executemany sends one statement per row). The new ids, when asked for, are
taken from the table's sequence beforehand, so each row knows its own id without relying
on the order of RETURNING. SQLite keeps SQLAlchemy's multi-row insert.

Errors are SQLAlchemy's own (an `IntegrityError` on a unique index, as with `insert()`),
and the statement runs in the session's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, insert, text

from citoyens.extensions import db


def insert_rows(table: Table, rows: Sequence[dict], *, returning_ids: bool = False) -> list[int]:
    """Insert `rows` (dicts with the same keys, the table's column names) into `table`;
    their new ids in the rows' order when `returning_ids`, else []."""
    if not rows:
        return []
    session = db.session
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        if returning_ids:
            statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            return list(session.execute(statement, list(rows)).scalars())
        session.execute(insert(table), list(rows))
        return []
    names = list(rows[0])
    params: dict[str, list] = {}
    ids: list[int] = []
    if returning_ids:
        ids = list(
            session.scalars(
                text(
                    "SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                    "FROM generate_series(1, :n)"
                ),
                {"table": table.name, "n": len(rows)},
            )
        )
        names = ["id", *(name for name in names if name != "id")]
        params["id"] = ids
    casts = []
    for position, name in enumerate(names):
        column = table.c[name]
        key = f"c{position}"
        if name == "id" and returning_ids:
            values = ids
        else:
            process = column.type.bind_processor(dialect)
            values = [row[name] for row in rows]
            if process is not None:
                values = [process(value) for value in values]
        params[key] = values
        casts.append(f"CAST(:{key} AS {column.type.compile(dialect)}[])")
    params.pop("id", None)
    columns = ", ".join(f'"{name}"' for name in names)
    # The names are the models' own (table and columns), never input.
    statement = (
        f'INSERT INTO "{table.name}" ({columns}) '  # noqa: S608  # nosec B608: model names
        f"SELECT * FROM unnest({', '.join(casts)})"
    )
    session.execute(text(statement), params)
    return ids
