"""tidemark.sinks: sinks that load records into a table, exactly once.

    import tidemark
    from tidemark.sinks import SQLiteSink, PostgresSink

    with tidemark.open("state", sources=["/var/log/app"]) as t:
        t.add_processor(SQLiteSink("rows.db", "lines"), name="sqlite")
        t.run()

Each record (a line, or with multiline_start a whole multiline record)
becomes one row of `table`, created if missing with the layout of the C
`postgres` processor (a record longer than max_record comes in pieces,
each a row of its own):

    line text, path text, "offset" bigint, record_id text UNIQUE,
    ingested_at timestamp (SQLite: ISO 8601 text, UTC)

`record_id` is INSTANCE:FILE_ID:GENERATION:OFFSET (the state directory's
random instance id, the file's id in it, its truncation count and the
record's offset): it names a record for good, so a record delivered again
after a crash is dropped by the unique constraint (INSERT ... ON CONFLICT DO
NOTHING), and rows go in inside one database transaction that commit()
commits. A failed chunk is rolled back with the transaction (the sink is
reopened), so nothing of it stays. Together: exactly once across kill -9.

With `parse`, a record's columns are what parse(line) returns: a dict
{column: value} (None: skip the record), stored beside path, "offset",
record_id and ingested_at; a new SQLite table gets untyped columns named
after the first record's keys, a PostgreSQL table must have them (or gets
them as text when the sink creates it). An exception in parse refuses the
record: with dead_letter set it is set aside, else its file waits. A line
that is not UTF-8 is a tidemark.Reject.
"""
import os
import re
import sqlite3
from typing import Any, Callable, Iterator, List, Mapping, Optional, Tuple

from . import RETRY, Chunk, Reject, _Retry, logger

__all__ = ["SQLiteSink", "PostgresSink", "Parse"]

Parse = Callable[[str], Optional[Mapping[str, Any]]]
"""parse(line) -> {column: value}, or None to skip the record."""

_BASE = ("path", "offset", "record_id", "ingested_at")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _check_name(what: str, name: str) -> str:
    if not _NAME.match(name):
        raise ValueError("%s %r: a plain SQL name ([A-Za-z_][A-Za-z0-9_]*, "
                         "optionally schema.name)" % (what, name))
    return name


def _quote(name: str) -> str:
    return ".".join('"%s"' % part for part in name.split("."))


class _RecordSink:
    """What both sinks share: cutting chunks into records and naming them."""

    tidemark_instance: Optional[str] = None   # set by tidemark before open()

    def __init__(self, table: str, parse: Optional[Parse]) -> None:
        self.table = _check_name("table", table)
        self.parse = parse
        self.columns: Optional[Tuple[str, ...]] = None   # parse's, once known

    def records(self, chunk: Chunk) -> Iterator[Tuple[int, str]]:
        """(offset, text) of each record in the chunk: a line, or with
        multiline_start a whole record (its lines joined by newlines),
        without its last newline."""
        data = bytes(chunk.data)
        given = getattr(chunk, "record_ends", None)
        if given is None:
            ends = []
            pos = 0
            while True:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    break
                ends.append(nl + 1)
                pos = nl + 1
        else:
            ends = list(given)
        if not ends or ends[-1] < len(data):
            # a piece of a record over max_record (or bytes mode's rest):
            # a row of its own, at its own offset
            ends.append(len(data))
        pos = 0
        for end in ends:
            raw = data[pos:end]
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise Reject("%s at offset %d: not UTF-8 (%s)" % (
                    chunk.path, chunk.offset + pos, e.reason)) from None
            yield chunk.offset + pos, text
            pos = end

    def rows(self, chunk: Chunk) -> List[Tuple[Any, ...]]:
        """The rows of a chunk: the record's columns, then path, offset,
        record_id."""
        prefix = "%s:%d:%d:" % (self.tidemark_instance or "-", chunk.file_id,
                                chunk.generation)
        path = chunk.path
        out: List[Tuple[Any, ...]] = []
        parse = self.parse
        for off, line in self.records(chunk):
            if parse is None:
                out.append((line, path, off, prefix + str(off)))
                continue
            cols = parse(line)
            if cols is None:
                continue
            if self.columns is None:
                self.columns = tuple(_check_name("column", c) for c in cols)
                self.new_columns(self.columns)
            elif tuple(cols) != self.columns:
                raise ValueError("parse() returned the columns %s, earlier "
                                 "%s" % (sorted(cols), sorted(self.columns)))
            out.append(tuple(cols.values()) + (path, off, prefix + str(off)))
        return out

    def new_columns(self, columns: Tuple[str, ...]) -> None:
        """parse() named its columns for the first time."""

    def insert_sql(self, placeholder: str, conflict: str) -> str:
        cols = ("line",) if self.columns is None else self.columns
        names = ", ".join(_quote(c) for c in cols + _BASE[:3])
        marks = ", ".join([placeholder] * (len(cols) + 3))
        return "INSERT INTO %s (%s) VALUES (%s) %s" % (
            _quote(self.table), names, marks, conflict)


class SQLiteSink(_RecordSink):
    """Records into table `table` of the SQLite database at `path`,
    exactly once (see the module's help). Rows of a chunk go into an open
    transaction; commit() commits it."""

    def __init__(self, path: "os.PathLike[str] | str", table: str = "lines",
                 parse: Optional[Parse] = None) -> None:
        super().__init__(table, parse)
        self.path = os.fspath(path)
        self.db: Any = None

    def open(self, restore: Optional[bytes]) -> None:
        if self.db is not None:
            self.close()
        # isolation_level=None: transactions are ours (BEGIN ... COMMIT).
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA busy_timeout = 10000")
        if self.parse is None:
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS %s (line TEXT, path TEXT, "
                "\"offset\" INTEGER, record_id TEXT UNIQUE, ingested_at TEXT "
                "DEFAULT (strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', 'now')))"
                % _quote(self.table))
        self.sql: Optional[str] = None
        self.columns = None
        self.in_txn = False

    def new_columns(self, columns: Tuple[str, ...]) -> None:
        cols = ", ".join("%s" % _quote(c) for c in columns)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS %s (%s, path TEXT, \"offset\" "
            "INTEGER, record_id TEXT UNIQUE, ingested_at TEXT DEFAULT "
            "(strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', 'now')))"
            % (_quote(self.table), cols))
        self.sql = None

    def process(self, chunk: Chunk) -> None:
        rows = self.rows(chunk)
        if not rows:
            return None
        if self.sql is None:
            self.sql = self.insert_sql("?", "ON CONFLICT (record_id) DO "
                                       "NOTHING")
        if not self.in_txn:
            self.db.execute("BEGIN")
            self.in_txn = True
        try:
            self.db.executemany(self.sql, rows)
        except sqlite3.IntegrityError as e:   # never acceptable
            raise Reject("%s: %s" % (self.table, e)) from e
        return None

    def commit(self) -> bytes:
        if self.in_txn:
            self.db.execute("COMMIT")
            self.in_txn = False
        return b""

    def close(self) -> None:
        if self.db is not None:
            db, self.db = self.db, None
            db.close()      # an open transaction is rolled back


class PostgresSink(_RecordSink):
    """Records into table `table` of the PostgreSQL database `conninfo`
    (a libpq connection string or URI), exactly once (see the module's
    help), with Debian's python3-psycopg (psycopg 3). Rows of a chunk go
    into an open transaction (INSERT ... ON CONFLICT (record_id) DO
    NOTHING); commit() commits it.

    The server away or restarting: the rows taken since the last commit are
    kept here, so process() answers tidemark.RETRY (reading pauses, one
    warning per outage naming the server) until it is back, then sends them
    again in a new transaction; nothing is lost, nothing doubled, and no
    record is taken for a bad one. A row the server refuses (a constraint,
    a value its column cannot hold) is a tidemark.Reject."""

    def __init__(self, conninfo: str, table: str = "lines",
                 parse: Optional[Parse] = None) -> None:
        super().__init__(table, parse)
        self.conninfo = conninfo
        self.conn: Any = None
        self.pending: List[Tuple[Any, ...]] = []   # since the last commit
        self.away = False

    def open(self, restore: Optional[bytes]) -> None:
        if self.conn is not None:
            self.close()
        self.pending = []
        self.sql: Optional[str] = None
        self.columns = None
        self._connect(False)

    def _where(self) -> str:
        try:
            import psycopg
            info = psycopg.conninfo.conninfo_to_dict(self.conninfo)
            return "%s:%s" % (info.get("host", "localhost"),
                              info.get("port", "5432"))
        except Exception:
            return "the server"

    def _connect(self, replay: bool) -> bool:
        """Connect (and send the pending rows again). False: the server is
        away (warned about once per outage)."""
        import psycopg
        try:
            if self.conn is None:
                self.conn = psycopg.connect(self.conninfo, autocommit=False)
                if self.parse is None:
                    self._create("line text")
                elif self.columns is not None:
                    self.new_columns(self.columns)
                if replay and self.pending:
                    self._insert(self.pending)
            if self.away:
                self.away = False
                logger.warning("postgres sink %s: %s is back", self.table,
                               self._where())
            return True
        except psycopg.OperationalError as e:
            self.close()
            if not self.away:
                self.away = True
                logger.warning("postgres sink %s: %s is away (%s): reading "
                               "pauses until it is back", self.table,
                               self._where(), str(e).strip().splitlines()[0]
                               if str(e).strip() else type(e).__name__)
            return False

    def _create(self, columns: str) -> None:
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS %s (%s, path text, \"offset\" bigint, "
            "record_id text UNIQUE, ingested_at timestamptz DEFAULT now())"
            % (_quote(self.table), columns))
        self.conn.commit()

    def new_columns(self, columns: Tuple[str, ...]) -> None:
        if self.conn is not None:
            self._create(", ".join("%s text" % _quote(c) for c in columns))
        self.sql = None

    def _insert(self, rows: List[Tuple[Any, ...]]) -> None:
        if self.sql is None:
            self.sql = self.insert_sql("%s", "ON CONFLICT (record_id) DO "
                                       "NOTHING")
        with self.conn.cursor() as cur:
            cur.executemany(self.sql, rows)

    def process(self, chunk: Chunk) -> Optional[_Retry]:
        import psycopg
        if self.conn is None and not self._connect(True):
            return RETRY
        rows = self.rows(chunk)
        if not rows:
            return None
        try:
            self._insert(rows)
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as e:
            raise Reject("%s: %s" % (self.table, e)) from e  # never acceptable
        except psycopg.OperationalError:
            self.close()        # the transaction is gone: pending has it
            if not self._connect(True):
                return RETRY
            self._insert(rows)
        self.pending.extend(rows)
        return None

    def commit(self) -> bytes:
        import psycopg
        if self.conn is None and not self._connect(True):
            raise ConnectionError("postgres sink %s: %s is away" % (
                self.table, self._where()))
        try:
            self.conn.commit()
        except psycopg.OperationalError:
            # Unknown whether it committed: send everything again (the
            # record ids drop what made it) and commit that.
            self.close()
            if not self._connect(True):
                raise
            self.conn.commit()
        self.pending = []
        return b""

    def close(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            try:
                conn.close()    # an open transaction is rolled back
            except Exception:
                pass
