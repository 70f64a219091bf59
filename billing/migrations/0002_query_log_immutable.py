"""On PostgreSQL the query log refuses UPDATE and DELETE (条例 Art. 22: an immutable log of
every query)."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION billing_query_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'billing_query is immutable';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_query_immutable
    BEFORE UPDATE OR DELETE ON billing_query
    FOR EACH ROW EXECUTE FUNCTION billing_query_immutable();
"""
DROP = """
DROP TRIGGER IF EXISTS billing_query_immutable ON billing_query;
DROP FUNCTION IF EXISTS billing_query_immutable();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
