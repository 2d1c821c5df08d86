"""Writing generated records fast: PostgreSQL COPY, SQLite executemany, in one transaction.

Rows carry their ids: the generator numbers records itself (from 1, on an empty sandbox) so that
references between records (a time entry's story, a NetSuite time bill's employee) are known
before anything is written, and so that the same seed gives byte-identical rows. After the load
the id sequence is moved past the highest id, so that the emulators' own creates continue.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from django.apps import apps
from django.db import connections
from psycopg.copy import QueuedLibpqWriter

from sandbox.router import SANDBOX_APP_LABEL, SANDBOX_DB

# A row: id, system, object_type, external_id, parent_id, status, data, created_at and
# updated_at; the times are aware datetimes, or `stamp()` strings on the hot path (formatted
# once per day).
Row = tuple[int, str, str, "str | None", "int | None", str, dict, Any, Any]

COLUMNS = (
    "id, system, object_type, external_id, parent_id, status, data, created_at, updated_at, deleted"
)
CHUNK_ROWS = 20_000
NULL = "\\N"  # COPY text format's NULL


def money(cents: int) -> orjson.Fragment:
    """An amount in major units as an exact JSON number ("1234.50"), from integer cents.

    Vendors whose JSON carries money as decimal numbers (Salesforce, NetSuite) get it written
    digit for digit, never through a float.
    """
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return orjson.Fragment(f"{sign}{whole}.{fraction:02d}")


_MONEY: dict[int, orjson.Fragment] = {}


def money_cached(cents: int) -> orjson.Fragment:
    """`money()` for the hot path, where the same rates and amounts repeat."""
    fragment = _MONEY.get(cents)
    if fragment is None:
        fragment = money(cents)
        if len(_MONEY) < 100_000:
            _MONEY[cents] = fragment
    return fragment


def stamp(moment: dt.datetime) -> str:
    """A UTC time as the writer passes it on: "2026-05-04 17:30:00+00:00"."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")


def _stamp(value: Any) -> str:
    return value if type(value) is str else stamp(value)


def data_json(data: dict[str, Any]) -> str:
    return orjson.dumps(data).decode()


class IdBook:
    """Numbers every record; remembers the ids of master data by (system, kind, key)."""

    def __init__(self) -> None:
        self.last = 0
        self._ids: dict[tuple[str, str, str], int] = {}

    def new(self) -> int:
        self.last += 1
        return self.last

    def assign(self, system: str, kind: str, key: str) -> int:
        record_id = self.new()
        self._ids[(system, kind, key)] = record_id
        return record_id

    def get(self, system: str, kind: str, key: str) -> int | None:
        return self._ids.get((system, kind, key))

    def __getitem__(self, item: tuple[str, str, str]) -> int:
        return self._ids[item]


class RecordSink:
    """Buffers rows and writes them in chunks; `written` counts rows per (system, object_type)."""

    def __init__(self) -> None:
        self.rows = 0
        self.written: dict[tuple[str, str], int] = {}
        self._buffer: list[Row] = []

    def add(self, row: Row) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._write(self._buffer)
            self.rows += len(self._buffer)
            for key, count in Counter(row[1:3] for row in self._buffer).items():
                self.written[key] = self.written.get(key, 0) + count
            self._buffer = []

    def _write(self, rows: list[Row]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class _CopySink(RecordSink):
    def __init__(self, copy) -> None:
        super().__init__()
        self._copy = copy

    def _write(self, rows: list[Row]) -> None:
        lines = []
        for rid, system, otype, ext, parent, status, data, created, updated in rows:
            text = data_json(data)
            if "\\" in text:  # COPY text format: a backslash is the escape character
                text = text.replace("\\", "\\\\")
            lines.append(
                f"{rid}\t{system}\t{otype}\t{_copy_text(ext)}\t"
                f"{NULL if parent is None else parent}\t{status}\t{text}\t"
                f"{_stamp(created)}\t{_stamp(updated)}\tf\n"
            )
        self._copy.write("".join(lines).encode())


def _copy_text(value: str | None) -> str:
    if value is None:
        return NULL
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


class _SqliteSink(RecordSink):
    def __init__(self, cursor) -> None:
        super().__init__()
        self._cursor = cursor
        self._sql = (
            f"INSERT INTO sandbox_record ({COLUMNS}) "  # noqa: S608 - constant column names
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 0)"
        )

    def _write(self, rows: list[Row]) -> None:
        # Django keeps SQLite datetimes as naive UTC text ("2026-05-04 17:30:00").
        self._cursor.executemany(
            self._sql,
            [
                (
                    rid,
                    system,
                    otype,
                    ext,
                    parent,
                    status,
                    data_json(data),
                    _stamp(created)[:-6],
                    _stamp(updated)[:-6],
                )
                for rid, system, otype, ext, parent, status, data, created, updated in rows
            ],
        )


@contextmanager
def record_sink(
    *, using: str = SANDBOX_DB, note: Callable[[str], None] | None = None
) -> Iterator[RecordSink]:
    """A sink writing into `sandbox_record` on `using`. Call inside a transaction.

    On PostgreSQL one COPY stream carries every row; elsewhere executemany per chunk. `note`
    hears about the phases after the last row (COPY finished, indexes rebuilt).
    """
    note = note or (lambda _message: None)
    connection = connections[using]
    with connection.cursor() as cursor:
        rebuild = _secondary_indexes_drop(cursor, vendor=connection.vendor)
        if connection.vendor == "postgresql":
            raw = cursor.cursor
            # A writer thread feeds the server while this thread generates the next chunk
            # (the default writer would make the two take turns).
            with raw.copy(
                f"COPY sandbox_record ({COLUMNS}) FROM STDIN", writer=QueuedLibpqWriter(raw)
            ) as copy:
                sink = _CopySink(copy)
                yield sink
                sink.flush()
            note(f"COPY of {sink.rows:,} rows finished")
            # Building an index once, sorted, is several times faster than growing it row by
            # row during the COPY; the transaction restores the indexes if anything fails.
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            cursor.execute("SET LOCAL max_parallel_maintenance_workers = 2")
            for statement in rebuild:
                cursor.execute(statement)
            if rebuild:
                note(f"{len(rebuild)} index(es) rebuilt")
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('sandbox_record', 'id'), "
                "GREATEST((SELECT MAX(id) FROM sandbox_record), 1))"
            )
        else:
            sink = _SqliteSink(cursor)
            yield sink
            sink.flush()
            note(f"insert of {sink.rows:,} rows finished")
            for statement in rebuild:
                cursor.execute(statement)
            if rebuild:
                note(f"{len(rebuild)} index(es) rebuilt")


# Indexes whose keys arrive in random order during the load (a time entry's workspace): growing
# them row by row costs more than one sorted build afterwards. The others grow at a few right
# edges (ids, statuses, days and external ids all increase as the stream goes), which is cheap,
# and the server maintains them while this process is busy generating the next chunk.
REBUILT_INDEXES = ("sbx_rec_parent",)


def _secondary_indexes_drop(cursor, *, vendor: str) -> list[str]:
    """Drop the REBUILT_INDEXES of sandbox_record (only while the table is empty) and return the
    statements that recreate them exactly (names and definitions from the catalog)."""
    cursor.execute("SELECT 1 FROM sandbox_record LIMIT 1")
    if cursor.fetchone() is not None:
        return []
    if vendor == "postgresql":
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "WHERE i.tablename = 'sandbox_record' AND i.schemaname = current_schema() "
            "AND i.indexname = ANY(%s) ORDER BY i.indexname",
            [list(REBUILT_INDEXES)],
        )
    else:
        names = ", ".join(f"'{name}'" for name in REBUILT_INDEXES)
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "  # noqa: S608 - constants
            f"AND tbl_name = 'sandbox_record' AND name IN ({names}) ORDER BY name"
        )
    found = cursor.fetchall()
    for name, _definition in found:
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _name, definition in found]


def sandbox_is_empty(*, using: str = SANDBOX_DB) -> bool:
    with connections[using].cursor() as cursor:
        for table in ("sandbox_record", "sandbox_event"):
            cursor.execute(f"SELECT 1 FROM {table} LIMIT 1")  # noqa: S608 - constant names
            if cursor.fetchone() is not None:
                return False
    return True


def sandbox_record_count(*, using: str = SANDBOX_DB) -> int:
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM sandbox_record")
        return cursor.fetchone()[0]


def _sandbox_tables() -> list[str]:
    """Every table of the sandbox app (records, events, idempotency keys, webhooks, and whatever
    the emulators add later), from the app registry."""
    return sorted(m._meta.db_table for m in apps.get_app_config(SANDBOX_APP_LABEL).get_models())


def sandbox_clear(*, using: str = SANDBOX_DB) -> None:
    """Delete every sandbox record, event, idempotency key and webhook, and restart the ids."""
    connection = connections[using]
    tables = _sandbox_tables()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
            return
        # SQLite checks Django's foreign keys at commit (deferred), so the order does not matter.
        for table in tables:
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - constant names
        names = ", ".join(f"'{table}'" for table in tables)
        cursor.execute(f"DELETE FROM sqlite_sequence WHERE name IN ({names})")  # noqa: S608 - constants


def sandbox_analyze(*, using: str = SANDBOX_DB) -> None:
    """Refresh planner statistics after a bulk load (PostgreSQL), so paging queries use indexes."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE sandbox_record")
