from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "sync.pipeline"
    label = "pipeline"
    verbose_name = "Sync pipeline"
