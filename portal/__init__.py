"""The Ledgerbridge Django project: settings, URLs, Celery app, roles and the browser shell."""

from portal.celery import app as celery_app

__all__ = ["celery_app"]
