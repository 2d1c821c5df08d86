"""Every admin changelist answers malformed query parameters with 400, a redirect to its error
page, or a (possibly empty) list: never a 500. Several hundred requests in all, run on the
suite's database (PostgreSQL under `make test`, which refuses NUL bytes and range overflows
that SQLite lets through)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from tests.portal.surface import surface_seed

NASTY_VALUES = (
    "(",
    "[",
    "\x00",
    "x" * 300,
    ",,,",
    "maybe",
    "2026-13-45",
    "-1",
    "99999999999999999999",
    "' OR 1=1 --",
    "%",
    "\u202e",
)
GENERAL = [
    {"q": "\x00"},
    {"q": "' OR 1=1 --"},
    {"q": "%_\\"},
    {"q": "a" * 5000},
    {"q": "correlation:\x00"},
    {"q": "0" * 32},
    {"o": "abc"},
    {"o": "-99"},
    {"o": "1.2.3"},
    {"o": "\x00"},
    {"p": "-1"},
    {"p": "abc"},
    {"p": "999999"},
    {"all": ""},
    {"e": "1"},
    {"_facets": "1"},
    {"_to_field": "password"},
    {"_popup": "1"},
    {"unknown_param": "1"},
    {"id__gt": "1"},
    {"pk": "abc"},
    {"payload__contains": "x"},
]


def _changelists() -> list[tuple[str, admin.ModelAdmin]]:
    return sorted(
        (
            (reverse(f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist"), model_admin)
            for m, model_admin in admin.site._registry.items()
        ),
        key=lambda pair: pair[0],
    )


def _filter_paths(model_admin: admin.ModelAdmin) -> list[str]:
    paths = []
    for entry in model_admin.list_filter:
        if isinstance(entry, str):
            paths.append(entry)
        elif isinstance(entry, tuple | list):
            paths.append(entry[0])
    return paths


def _params_for(model_admin: admin.ModelAdmin) -> list[dict[str, str]]:
    params = list(GENERAL)
    for index, path in enumerate(_filter_paths(model_admin)):
        value = NASTY_VALUES[index % len(NASTY_VALUES)]
        params += [
            {f"{path}__regex": "("},
            {f"{path}__exact": value},
            {f"{path}__id__exact": NASTY_VALUES[(index + 3) % len(NASTY_VALUES)]},
            {f"{path}__isnull": "maybe"},
            {f"{path}__gte": "2026-13-45"},
            {path: "\x00"},
        ]
    if model_admin.date_hierarchy:
        field = model_admin.date_hierarchy
        params += [
            {f"{field}__year": "9999"},
            {f"{field}__year": "0"},
            {f"{field}__year": "2026", f"{field}__month": "13"},
            {f"{field}__year": "2026", f"{field}__month": "2", f"{field}__day": "30"},
            {f"{field}__year": "٢٠٢٦"},
        ]
    return params


@pytest.mark.django_db
def test_no_admin_changelist_answers_a_malformed_query_with_a_500(django_user_model):
    surface_seed()  # a row in every table, so that filters and searches really run
    client = Client(raise_request_exception=False)
    client.force_login(django_user_model.objects.create_superuser("fuzz", "f@x.invalid", "pw"))
    failures = []
    sent = 0
    for url, model_admin in _changelists():
        for params in _params_for(model_admin):
            response = client.get(url, params)
            sent += 1
            if response.status_code not in (200, 302, 400):
                failures.append(f"{url}?{params}: {response.status_code}")
    assert sent >= 300, sent
    assert not failures, f"{len(failures)} of {sent} requests failed:\n" + "\n".join(failures)
