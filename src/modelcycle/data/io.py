"""Read and write datasets: CSV (delimiter and encoding sniffed), Parquet, and SQL tables/queries.

Reading normalises what real files get wrong (trailing spaces in headers, textual nulls such as
"None", numbers stored as text) and records each fix as a note, so validation can report it.
Everything a user can get wrong ends in one :class:`~modelcycle.errors.DataError`.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelcycle.config.spec import DataSource
from modelcycle.errors import DataError

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
NULL_TOKENS = (
    "None",
    "none",
    "NULL",
    "null",
    "NaN",
    "nan",
    "NA",
    "N/A",
    "n/a",
    "#N/A",
    "<NA>",
    "-",
)
MIXED_TYPE_SHARE = 0.1
"""A column whose values are numbers but for at most this share is reported as mixed types."""
_NUMERIC_SAMPLE = 1000
_SNIFF_BYTES = 1 << 20
_DELIMITERS = ",;\t|"


@dataclass
class Dataset:
    """A dataset read into memory, where it came from, and what reading had to fix."""

    frame: pd.DataFrame
    source: str
    notes: list[str] = field(default_factory=list)
    mixed_types: dict[str, list[str]] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """Content digest of the frame (see :func:`frame_digest`)."""
        return frame_digest(self.frame)


def frame_digest(frame: pd.DataFrame) -> str:
    """A sha256 of a frame's column names and values, independent of its index.

    Vectorised through :func:`pandas.util.hash_pandas_object`, so it costs one pass over the data.
    """
    digest = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    if len(frame):
        hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        digest.update(np.ascontiguousarray(hashed).tobytes())
    return digest.hexdigest()


def read_table(
    path: Path | str,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
) -> Dataset:
    """Read a CSV or Parquet file into a :class:`Dataset`.

    Args:
        path: The file. The format comes from the suffix, or from the content when unknown.
        delimiter: CSV delimiter; sniffed from the first lines when ``None``.
        encoding: Text encoding; UTF-8 is tried first, then detected, when ``None``.

    Raises:
        DataError: Missing, empty or unreadable file, wrong delimiter, duplicate column names.
    """
    path = Path(path).expanduser()
    head = read_head(path, "check the path (data.path in the spec)")
    if is_parquet(path, head):
        return normalise(_read_parquet(path), str(path), [])
    options, notes = csv_options(path, head, encoding=encoding, delimiter=delimiter)
    try:
        frame = pd.read_csv(path, **options)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise csv_error(path, options["sep"], err) from None
    if frame.empty:
        raise DataError(f"{path} has a header but no rows", "give a file with at least one row")
    return normalise(frame, str(path), notes)


def read_sql(url: str, *, table: str | None = None, query: str | None = None) -> Dataset:
    """Read a table (``name`` or ``schema.name``) or a query through SQLAlchemy.

    Raises:
        DataError: The URL is invalid, the database cannot be reached, or the table/query fails.
    """
    import sqlalchemy as sa
    from sqlalchemy import exc

    from modelcycle.config.settings import mask

    shown = mask(url)
    try:
        parsed = sa.engine.make_url(url)
        engine = sa.create_engine(parsed)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as err:
        raise DataError(
            f"invalid database URL {shown}: {err}",
            "use a SQLAlchemy URL such as postgresql+psycopg://user@host/db or sqlite:///file.db "
            "(PostgreSQL needs `pip install modelcycle[postgres]`)",
        ) from None
    database = parsed.database or ""
    sqlite_file = parsed.drivername.startswith("sqlite") and database not in ("", ":memory:")
    if sqlite_file and not Path(database).is_file():  # connecting would create an empty file
        raise DataError(f"SQLite database {database} does not exist", "check data.url")
    if query is not None:
        statement: sa.TextClause | sa.Select[Any] = sa.text(query)
    else:
        assert table is not None
        schema, _, name = table.rpartition(".")
        statement = sa.select(sa.text("*")).select_from(sa.table(name, schema=schema or None))
    try:
        with engine.connect() as conn:
            frame = pd.read_sql_query(statement, conn)
    except exc.OperationalError as err:
        raise DataError(
            f"cannot read from {shown}: {_first_line(err.orig or err)}",
            "check that the database is running and the URL, table and query are right",
        ) from None
    except (exc.SQLAlchemyError, pd.errors.DatabaseError) as err:
        raise DataError(
            f"query failed on {shown}: {_first_line(err.__cause__ or getattr(err, 'orig', err))}",
            "check data.table / data.query",
        ) from None
    finally:
        engine.dispose()
    if frame.empty:
        raise DataError(f"{table or 'the query'} on {shown} returned no rows", "check the query")
    return normalise(frame, f"{shown} ({table or query})", [])


def _first_line(err: BaseException | None) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write a frame as CSV or Parquet (by suffix), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        frame.to_parquet(path, index=False)
    elif path.suffix.lower() in CSV_SUFFIXES:
        frame.to_csv(path, index=False)
    else:
        raise DataError(f"cannot write {path}: unknown format", "use a .csv or .parquet file name")
    return path


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises many types for a damaged file
        raise DataError(
            f"{path} is not a readable Parquet file: {err}", "re-export the file"
        ) from None
    if frame.empty:
        raise DataError(f"{path} has no rows", "give a file with at least one row")
    return frame


def read_head(path: Path, hint: str = "check the path") -> bytes:
    """The first bytes of a data file, once it is known to exist, be a file and not be empty.

    Raises:
        DataError: Missing, a folder, or empty; ``hint`` is the fix for a missing file.
    """
    if not path.exists():
        raise DataError(f"data file {path} does not exist", hint)
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a data file", "give a CSV or Parquet file")
    if path.stat().st_size == 0:
        raise DataError(
            f"data file {path} is empty (0 bytes)", "give a file with a header and rows"
        )
    with path.open("rb") as handle:
        return handle.read(_SNIFF_BYTES)


def is_parquet(path: Path, head: bytes) -> bool:
    """Whether a file is Parquet (by suffix or magic bytes).

    Raises:
        DataError: It is neither Parquet nor text.
    """
    if path.suffix.lower() in PARQUET_SUFFIXES or head.startswith(b"PAR1"):
        return True
    if b"\x00" in head:
        raise DataError(
            f"{path} is not a CSV or Parquet file (it holds binary data)",
            "export the data as CSV (UTF-8) or Parquet",
        )
    return False


def csv_options(
    path: Path, head: bytes, *, encoding: str | None = None, delimiter: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """``pandas.read_csv`` keyword arguments for a CSV file, and notes about what was sniffed.

    The encoding and delimiter are sniffed from ``head`` unless given; the header is checked.

    Raises:
        DataError: Undecodable text, a wrong delimiter, duplicate column names, no rows.
    """
    enc, notes = sniff_encoding(path, head, encoding)
    text = head.decode(enc, errors="replace")
    sep = delimiter or sniff_delimiter(text)
    header = next(csv.reader(io.StringIO(text), delimiter=sep), [])
    check_header(path, header, sep, text)
    options = {
        "sep": sep,
        "encoding": enc,
        "keep_default_na": False,
        "na_values": [""],
        "skipinitialspace": True,
    }
    return options, notes


def csv_error(path: Path, sep: str, err: Exception) -> DataError:
    """The one message for a CSV file pandas cannot parse."""
    return DataError(
        f"cannot parse {path} as CSV with delimiter {sep!r}: {str(err).strip()}",
        "check the delimiter (data.delimiter) and that every row has the same number of fields",
    )


def sniff_encoding(path: Path, head: bytes, encoding: str | None) -> tuple[str, list[str]]:
    """The text encoding of a file from its first bytes, and notes about the choice.

    Raises:
        DataError: The bytes are not text in any encoding modelcycle recognises.
    """
    if encoding:
        try:
            head.decode(encoding)
        except (LookupError, UnicodeDecodeError) as err:
            raise DataError(
                f"{path} cannot be decoded as {encoding}: {err}",
                "fix data.encoding in the spec, or remove it to let modelcycle detect it",
            ) from None
        return encoding, []
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start >= len(head) - 4:  # a multi-byte character cut at the sniff boundary
            return "utf-8-sig", []
        found = _legacy_encoding(head)
        if found is None:
            raise DataError(
                f"{path} is not text in any encoding modelcycle recognises",
                "save it as UTF-8 CSV or Parquet",
            ) from None
        note = (
            f"{path.name} is not UTF-8; read it as {found} "
            "(save it as UTF-8, or set data.encoding, to silence this)"
        )
        return found, [note]
    return "utf-8-sig", []


def _legacy_encoding(head: bytes) -> str | None:
    """The encoding of non-UTF-8 text: Windows-1252 when it decodes to printable text.

    Western-European files are by far the most common non-UTF-8 data; statistical detectors
    confuse their code pages (reading "Crème" as "Crčme"), so cp1252 is preferred when it fits,
    and the detector is asked only when it does not.
    """
    try:
        text = head.decode("cp1252")
    except UnicodeDecodeError:
        text = ""
    if text and sum(c.isprintable() or c in "\r\n\t" for c in text) >= 0.99 * len(text):
        return "cp1252"
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    return best.encoding if best is not None else None


def sniff_delimiter(text: str) -> str:
    """The field delimiter of CSV-like text (comma when unsure)."""
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        counts = {d: first.count(d) for d in _DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def check_header(path: Path, header: list[str], sep: str, text: str) -> None:
    """Refuse a header that shows the wrong delimiter or duplicate names, or a file with no rows.

    Raises:
        DataError: Naming the file and the fix.
    """
    names = [h.strip() for h in header]
    if len(names) == 1:
        others = [d for d in _DELIMITERS if d != sep and d in names[0]]
        if others:
            raise DataError(
                f"{path} reads as one column with delimiter {sep!r}, but its header holds "
                f"{others[0]!r}",
                f"set data.delimiter = {others[0]!r} in the spec (or --delimiter)",
            )
    seen: set[str] = set()
    dupes = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if dupes:
        raise DataError(
            f"{path} has duplicate column names: {', '.join(dupes)}",
            "rename the columns so each name appears once",
        )
    if len(text.splitlines()) < 2:
        raise DataError(f"{path} has a header but no rows", "give a file with at least one row")


def normalise(frame: pd.DataFrame, source: str, notes: list[str]) -> Dataset:
    """Strip header spaces, turn textual nulls into NaN, and numbers stored as text into numbers."""
    stripped = [str(c).strip() for c in frame.columns]
    renamed = [f"{c!r}" for c, s in zip(frame.columns, stripped, strict=True) if str(c) != s]
    if renamed:
        notes.append(f"stripped spaces from column names: {', '.join(renamed)}")
        frame.columns = pd.Index(stripped)
    if frame.columns.duplicated().any():
        dupes = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise DataError(
            f"{source} has duplicate column names: {', '.join(map(str, dupes))}",
            "rename the columns so each name appears once",
        )
    mixed: dict[str, list[str]] = {}
    for name in frame.columns:
        column = frame[name]
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue
        nulls = column.isin(NULL_TOKENS)
        n_nulls = int(nulls.sum())
        if n_nulls:
            tokens = sorted(map(str, pd.unique(column[nulls])))
            notes.append(
                f"column {name!r}: {n_nulls} textual nulls ({', '.join(tokens)}) read as missing"
            )
            column = column.mask(nulls)
            frame[name] = column
        present = column.dropna()
        if present.empty or not _looks_numeric(present):
            continue
        numbers = pd.to_numeric(column, errors="coerce")
        bad = present.index.difference(numbers.dropna().index)
        if bad.empty:
            frame[name] = numbers
        elif len(bad) <= MIXED_TYPE_SHARE * len(present):
            mixed[str(name)] = [str(v) for v in pd.unique(column[bad])[:5]]
    return Dataset(frame=frame, source=source, notes=notes, mixed_types=mixed)


def _looks_numeric(present: pd.Series) -> bool:
    """Whether most of a sample of a text column's values parse as numbers (cheap pre-check)."""
    sample = present.sample(min(len(present), _NUMERIC_SAMPLE), random_state=0)
    return bool(pd.to_numeric(sample, errors="coerce").notna().mean() >= 0.5)


def read_source(source: DataSource, root: Path, override: Path | None = None) -> Dataset:
    """Read a project's data: ``override`` when given, else the spec's file or SQL source.

    Args:
        source: The spec's ``[data]`` section.
        root: The project folder; relative paths are resolved against it.
        override: A file given on the command line instead of the spec's source.
    """
    if override is not None:
        return read_table(override, delimiter=source.delimiter, encoding=source.encoding)
    if source.path is not None:
        path = source.path if source.path.is_absolute() else root / source.path
        return read_table(path, delimiter=source.delimiter, encoding=source.encoding)
    assert source.url is not None
    return read_sql(source.url, table=source.table, query=source.query)
