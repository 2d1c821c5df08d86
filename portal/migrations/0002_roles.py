"""Create the role groups. Their permissions are kept in line by portal.roles.roles_sync,
which runs after every `migrate` (see PortalConfig.ready)."""

from django.db import migrations

ROLES = ("finance", "pmo", "mapping_admin", "integration_ops", "executive", "auditor")


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.using(schema_editor.connection.alias).get_or_create(name=name)


def remove_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("portal", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
