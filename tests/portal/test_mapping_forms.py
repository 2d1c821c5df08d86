"""The mapping forms' date pickers carry the date they were given, so saving a draft's notes
keeps its planned date."""

from __future__ import annotations

import datetime as dt

import pytest

from portal.mapping_forms import EffectiveDateForm, VersionForm


@pytest.mark.parametrize("form_class", [VersionForm, EffectiveDateForm])
def test_a_date_picker_shows_its_date_as_the_browser_reads_it(form_class, settings):
    settings.LANGUAGE_CODE = "en-gb"  # whose own format, 01/11/2026, a picker cannot read

    form = form_class(initial={"effective_from": dt.date(2026, 11, 1)})

    assert 'value="2026-11-01"' in str(form["effective_from"])
