"""The CSV a mapping version is exported to and imported from: every bad row named, by number."""

from __future__ import annotations

import pytest

from sync.mappings.csv_io import csv_errors_describe, entries_csv_parse, entries_csv_render

HEADER = "source_value,target_value,attributes\r\n"


def test_an_exported_file_reads_back_as_the_same_rows():
    rows = [("LB-GB", "3", {}), ("LB, NL", "7", {"country": "NL"}), ('say "hi"', "x", None)]

    parsed = entries_csv_parse(entries_csv_render(rows))

    assert parsed.errors == []
    assert [(r.source_value, r.target_value, r.attributes) for r in parsed.rows] == [
        ("LB-GB", "3", {}),
        ("LB, NL", "7", {"country": "NL"}),
        ('say "hi"', "x", {}),
    ]
    assert [r.number for r in parsed.rows] == [2, 3, 4]


@pytest.mark.parametrize(
    ("body", "number", "reason"),
    [
        ("LB-GB,\r\n", 2, "both required"),
        (",3\r\n", 2, "both required"),
        ("LB-GB,3,{}\r\nLB-GB,4\r\n", 3, "already on row 2"),
        ("LB-GB,3,[1]\r\n", 2, "JSON object"),
        ("LB-GB,3,{oops\r\n", 2, "JSON object"),
        ("LB-GB\r\n", 2, "1 columns"),
        ("LB-GB,3,{},extra\r\n", 2, "4 columns"),
        ("LB-GB," + "9" * 256 + "\r\n", 2, "longer than 255"),
    ],
)
def test_a_bad_row_is_named_by_its_row_number_and_reason(body, number, reason):
    parsed = entries_csv_parse(HEADER + body)

    assert [n for n, _ in parsed.errors] == [number]
    assert reason in parsed.errors[0][1]


def test_a_file_without_the_header_or_without_rows_is_refused():
    assert entries_csv_parse("LB-GB,3\r\n").errors[0][0] == 1
    assert "no rows" in entries_csv_parse(HEADER).errors[0][1]
    assert "no rows" in entries_csv_parse(HEADER + "\r\n,,\r\n").errors[0][1]


def test_blank_lines_are_skipped_and_later_rows_keep_their_spreadsheet_numbers():
    parsed = entries_csv_parse(HEADER + "\r\nLB-GB,3\r\nLB-NL,\r\n")

    assert [r.number for r in parsed.rows] == [3]
    assert [n for n, _ in parsed.errors] == [4]


def test_the_description_names_the_first_twenty_errors_and_counts_the_rest():
    lines = csv_errors_describe([(n, "bad") for n in range(2, 32)])

    assert lines[0] == "Row 2: bad"
    assert len(lines) == 21
    assert lines[-1] == "… and 10 more bad rows."
