"""Names for the few statements written out by hand.

A handful of reads run in every member query (the suspension check, the consent, the entries,
the multi-lending counts, the price rules, the audit head). Django's ORM spends longer building
each of them (0.5–1 ms of CPU) than the database spends answering, so they are written as SQL.
Table and column names still come from the models, through `Names`, so a renamed field breaks
loudly in the tests rather than silently in production; values only ever travel as
parameters. Everything else uses the ORM.
"""

import json
from functools import partial

from django.db import connection
from django.db.models import Model
from django.utils import timezone


class Names:
    """Quoted names of a model's table and columns: ``n = Names(Entry); n.table; n("status")``
    (a foreign key gives its ``_id`` column)."""

    def __init__(self, model: type[Model]):
        self._meta = model._meta

    @property
    def table(self) -> str:
        return connection.ops.quote_name(self._meta.db_table)

    def __call__(self, field: str) -> str:
        return connection.ops.quote_name(self._meta.get_field(field).column)

    def columns(self, prefix: str = "") -> str:
        """Every concrete column, in model order (what ``Model.objects.raw`` expects)."""
        return ", ".join(
            f"{prefix}{connection.ops.quote_name(f.column)}" for f in self._meta.concrete_fields
        )


def placeholders(values) -> str:
    """``%s, %s, …`` for an IN list (the same on every database)."""
    return ", ".join(["%s"] * len(values))


def fetch_one(sql: str, params) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetch_all(sql: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def insert_rows(
    model: type[Model], attnames: list[str], rows: list[tuple], *, returning_ids: bool = False
) -> list[int]:
    """Insert plain rows without building model instances, inside the caller's transaction:
    values in `attnames` order, already of the columns' Python types (a JSON field takes the
    dict or list); fields not named take their model default (auto_now: the time now).
    On PostgreSQL one COPY (with `returning_ids`, the keys are drawn from the table's sequence
    first, in one statement); elsewhere bulk_create. Returns the new primary keys in row order
    if asked, else []."""
    if not rows:
        return []
    meta = model._meta
    if connection.vendor != "postgresql":
        objs = [model(**dict(zip(attnames, row, strict=True))) for row in rows]
        model.objects.bulk_create(objs, batch_size=500)
        return [o.pk for o in objs] if returning_ids else []
    from psycopg import sql
    from psycopg.types.json import Jsonb

    given = [meta.get_field(a) if a != "id" else meta.pk for a in attnames]
    # Columns not given take their model default, as bulk_create would give them.
    missing = [f for f in meta.concrete_fields if f not in given and not f.primary_key]
    now = timezone.now()
    defaults = tuple(
        now
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
        else f.get_default()
        for f in missing
    )
    fields = given + missing
    json_at = [i for i, f in enumerate(fields) if f.get_internal_type() == "JSONField"]
    # As the field itself would write it (its encoder), without escaping non-ASCII text.
    dumps = {i: partial(json.dumps, cls=fields[i].encoder, ensure_ascii=False) for i in json_at}
    columns = [f.column for f in fields]
    ids: list[int] = []
    with connection.cursor() as cursor:
        if returning_ids:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, meta.pk.column, len(rows)],
            )
            ids = [r[0] for r in cursor.fetchall()]
            columns = [meta.pk.column, *columns]
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(meta.db_table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        )
        with cursor.copy(statement) as copy:
            for n, row in enumerate(rows):
                row = row + defaults if defaults else row
                if json_at:
                    row = list(row)
                    for i in json_at:
                        row[i] = None if row[i] is None else Jsonb(row[i], dumps=dumps[i])
                copy.write_row((ids[n], *row) if returning_ids else row)
    return ids
