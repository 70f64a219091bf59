"""Re-encrypt every personal identifier under the current key (the first of
FIELD_ENCRYPTION_KEYS).

Rotation: put the new key first (`new:…,old:…`), deploy, run this command, then remove the old
key. Each batch commits on its own and only rows still on an old key are selected, so an
interrupted run simply continues where it stopped when started again.
"""

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from registry import crypto
from registry.models import Subject

FIELDS = ("id_number", "name", "phone")


class Command(BaseCommand):
    help = "Re-encrypt personal identifiers under the current encryption key (resumable)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args, batch_size: int, **options):
        kid = crypto.current_key_id()
        table = connection.ops.quote_name(Subject._meta.db_table)
        columns = [Subject._meta.get_field(f) for f in FIELDS]
        prefix = f"v1.{kid}.%"
        stale = " OR ".join(f"{connection.ops.quote_name(c.column)} NOT LIKE %s" for c in columns)
        select = (
            f"SELECT id, {', '.join(connection.ops.quote_name(c.column) for c in columns)} "  # noqa: S608
            f"FROM {table} WHERE id > %s AND ({stale}) ORDER BY id LIMIT %s"
        )
        update = (
            f"UPDATE {table} SET "  # noqa: S608
            + ", ".join(f"{connection.ops.quote_name(c.column)} = %s" for c in columns)
            + " WHERE id = %s"
        )
        last_id, done = 0, 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(select, [last_id, *[prefix] * len(columns), batch_size])
                rows = cursor.fetchall()
                if not rows:
                    break
                for pk, *tokens in rows:
                    new = [crypto.reencrypt_token(t, aad=c.aad) for t, c in zip(tokens, columns, strict=True)]
                    cursor.execute(update, [*new, pk])
                last_id = rows[-1][0]
                done += len(rows)
            self.stdout.write(f"re-encrypted {done} subjects…")
        self.stdout.write(self.style.SUCCESS(f"Done: {done} subjects now on key {kid}."))
