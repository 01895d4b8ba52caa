"""A GIN index on Image.metadata for the metadata filters, on PostgreSQL only.

The filters ask ``metadata @> {"field": value}`` on PostgreSQL (see
``studio.selectors._metadata_q``), which this index (``jsonb_path_ops``) answers without
reading every image of the project. SQLite has no GIN: there the migration does nothing.
The index lives here rather than in ``Image.Meta.indexes`` because SQLite rebuilds a
table with its Meta indexes when a later migration alters it, and a GIN index there
would fail.
"""

from django.db import migrations

NAME = "studio_image_metadata_gin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {NAME} ON studio_image USING gin (metadata jsonb_path_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {NAME}")


class Migration(migrations.Migration):
    dependencies = [("studio", "0005_dataset_image_count")]

    operations = [migrations.RunPython(create, drop)]
