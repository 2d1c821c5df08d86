"""CSV drops of time entries: streaming reads into records, bad rows reported by row number."""

from __future__ import annotations

import pytest

from sync.connectors.base import CONFIGURATION, TransportError
from sync.integrations.csv_drop.client import CsvDropConnector, pages_from_text

HEADER = (
    "entry_id,user_id,workspace_id,story_id,date_performed,hours,billable,notes,rate,currency\n"
)


def test_a_good_row_becomes_a_time_entry_in_kantatas_shape():
    text = HEADER + "TE-1,u7,w3,s9,2026-01-05,1.5,yes,Design review,125.50,eur\n"
    page = next(pages_from_text(text))
    assert page.rejected == ()
    assert page.records == [
        {
            "id": "TE-1",
            "user_id": "u7",
            "workspace_id": "w3",
            "story_id": "s9",
            "date_performed": "2026-01-05",
            "time_in_minutes": 90,
            "billable": True,
            "notes": "Design review",
            "rate_in_cents": 12550,
            "currency": "EUR",
            "approved": True,
            "source_row": 2,
        }
    ]


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        ("TE-2,u7,w3,,2026-02-30,1,,,,", "date_performed", "YYYY-MM-DD"),
        ("TE-2,u7,w3,,20260205,1,,,,", "date_performed", "YYYY-MM-DD"),
        ("TE-2,u7,w3,,2026-W06-4,1,,,,", "date_performed", "YYYY-MM-DD"),
        ("TE-2,u7,w3,,2026-01-05,1.01,,,,", "hours", "whole number of minutes"),
        ("TE-2,u7,w3,,2026-01-05,0,,,,", "hours", "more than 0"),
        ("TE-2,u7,w3,,2026-01-05,25,,,,", "hours", "at most 24 hours"),
        ("TE-2,u7,w3,,2026-01-05,abc,,,,", "hours", "must be a number"),
        ("TE-2,,w3,,2026-01-05,1,,,,", "user_id", "required"),
        ("TE-2,u7,w3,,2026-01-05,1,maybe,,,", "billable", "true or false"),
        ("TE-2,u7,w3,,2026-01-05,1,,,10.005,EUR", "rate", "more decimals than EUR"),
        ("TE-2,u7,w3,,2026-01-05,1,,,1000.5,JPY", "rate", "more decimals than JPY"),
        ("TE-2,u7,w3,,2026-01-05,1,,,10,", "currency", "ISO 4217"),
        ("TE-2,u7,w3,,2026-01-05,,,,,", "time_in_minutes", "hours is required"),
    ],
)
def test_a_bad_row_is_rejected_with_its_row_number_and_column(row, column, message):
    text = HEADER + "TE-1,u7,w3,,2026-01-05,1,,,,\n" + row + "\n"
    page = next(pages_from_text(text))
    assert [r["id"] for r in page.records] == ["TE-1"]
    (rejected,) = page.rejected
    assert (rejected.row_number, rejected.column) == (3, column)
    assert message in rejected.message
    assert rejected.raw["entry_id"] == "TE-2"


def test_a_duplicate_entry_id_in_one_drop_is_rejected_at_its_second_row():
    text = HEADER + "TE-1,u7,w3,,2026-01-05,1,,,,\nTE-1,u8,w3,,2026-01-06,2,,,,\n"
    page = next(pages_from_text(text))
    assert len(page.records) == 1
    assert [(r.row_number, r.column) for r in page.rejected] == [(3, "entry_id")]


def test_a_row_with_more_cells_than_the_header_is_rejected():
    text = HEADER + "TE-1,u7,w3,,2026-01-05,1,,,,,surplus\n"
    page = next(pages_from_text(text))
    assert page.records == []
    assert page.rejected[0].row_number == 2


def test_a_drop_missing_required_columns_is_a_configuration_failure():
    with pytest.raises(TransportError) as caught:
        next(pages_from_text("entry_id,user_id,hours\nTE-1,u7,1\n"))
    assert caught.value.kind == CONFIGURATION
    assert "workspace_id" in caught.value.message


def test_minutes_headers_in_any_case_and_a_byte_order_mark_are_read(tmp_path):
    path = tmp_path / "drop.csv"
    path.write_text(
        "\ufeffEntry_ID,User_ID,Workspace_ID,Date_Performed,Time_In_Minutes\n"
        "TE-1,u1,w1,2026-01-05,45\n",
        encoding="utf-8",
    )
    (page,) = CsvDropConnector(path).pull(entity="time_entries")
    assert page.records[0]["time_in_minutes"] == 45


def test_a_large_drop_is_read_in_pages_and_resumes_from_a_cursor(tmp_path):
    path = tmp_path / "drop.csv"
    rows = "".join(f"TE-{n},u1,w1,,2026-01-05,1,,,,\n" for n in range(2500))
    path.write_text(HEADER + rows + "TE-bad,u1,w1,,someday,1,,,,\n", encoding="utf-8")
    connector = CsvDropConnector(path, page_size=1000)
    pages = list(connector.pull(entity="time_entries"))
    assert [len(p.records) + len(p.rejected) for p in pages] == [1000, 1000, 501]
    assert sum(len(p.records) for p in pages) == 2500
    assert pages[-1].rejected[0].row_number == 2502
    resumed = list(connector.pull(entity="time_entries", cursor=pages[0].next_cursor))
    assert resumed[0].records[0]["id"] == "TE-1000"
    assert resumed[0].records[0]["source_row"] == 1002
