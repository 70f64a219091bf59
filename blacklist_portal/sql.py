"""Names for the few statements written out by hand.

A handful of reads run in every member query (the suspension check, the consent, the entries,
the multi-lending counts, the price rules, the audit head). Django's ORM spends longer building
each of them (0.5–1 ms of CPU) than the database spends answering, so they are written as SQL.
Table and column names still come from the models, through `Names`, so a renamed field breaks
loudly in the tests rather than silently in production; values only ever travel as
parameters. Everything else uses the ORM.
"""

from django.db import connection
from django.db.models import Model


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
