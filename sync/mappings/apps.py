from django.apps import AppConfig


class MappingsConfig(AppConfig):
    name = "sync.mappings"
    label = "mappings"
    verbose_name = "Mappings and ownership"
    default_auto_field = "django.db.models.BigAutoField"
