from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "sync.sandbox"
    label = "sandbox"
    verbose_name = "Sandbox systems"
