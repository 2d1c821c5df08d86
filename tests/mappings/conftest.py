"""Fixtures for mappings and ownership tests: a mapping admin, sets and published versions.

Until `sync.mappings` is in INSTALLED_APPS, run these with
`DJANGO_SETTINGS_MODULE=sync.mappings.dev_settings`; without it only the pure-module tests
(test_resolve.py, test_ownership.py) are collected, so the rest of the suite still runs.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings

_INSTALLED = any(app.startswith("sync.mappings") for app in settings.INSTALLED_APPS)
if not _INSTALLED:
    collect_ignore = [
        "test_admin.py",
        "test_models.py",
        "test_ownership_defaults.py",
        "test_selectors.py",
        "test_services.py",
    ]


@pytest.fixture
def maria(db, django_user_model):
    """A mapping admin who drafts, reviews and publishes."""
    return django_user_model.objects.create_user(username="maria", password=None)


@pytest.fixture
def reviewer(db, django_user_model):
    """A second mapping admin, who publishes what maria drafted (four eyes)."""
    return django_user_model.objects.create_user(username="omar", password=None)


@pytest.fixture
def make_set(db, maria):
    """`make_set(slug, kind=...)`: a mapping set created through the service."""
    from sync.mappings import services

    def make(slug: str = "legal-entities", *, kind: str = "legal_entity", **extra):
        return services.mapping_set_create(
            slug=slug,
            name=extra.pop("name", slug.replace("-", " ").title()),
            kind=kind,
            user=maria,
            **extra,
        )

    return make


@pytest.fixture
def make_draft(maria):
    """`make_draft(set, {source: target}, based_on=None)`: a draft with those entries."""
    from sync.mappings import services

    def make(mapping_set, entries: dict[str, str] | None = None, *, based_on=None):
        version = services.mapping_version_create_draft(
            mapping_set=mapping_set, based_on=based_on, user=maria
        )
        for source, target in (entries or {}).items():
            services.mapping_entry_set(
                version=version, source_value=source, target_value=target, user=maria
            )
        return version

    return make


@pytest.fixture
def make_published(maria, reviewer, make_draft):
    """`make_published(set, {source: target}, effective_from)`: maria drafts and submits it,
    the reviewer publishes it."""
    from sync.mappings import services

    def make(mapping_set, entries: dict[str, str], effective_from: dt.date, *, based_on=None):
        version = make_draft(mapping_set, entries, based_on=based_on)
        services.mapping_version_submit(version=version, user=maria)
        return services.mapping_version_publish(
            version=version, effective_from=effective_from, user=reviewer
        )

    return make
