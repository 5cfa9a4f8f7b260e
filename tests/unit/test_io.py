"""Reading and writing datasets: CSV sniffing, normalisation notes, Parquet, SQL, errors."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelcycle.config.spec import DataSource
from modelcycle.data.io import Dataset, frame_digest, read_source, read_sql, read_table, write_table
from modelcycle.errors import DataError


def _csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _read_error(path: Path, **kw: str) -> DataError:
    with pytest.raises(DataError) as info:
        read_table(path, **kw)
    assert type(info.value) is DataError
    assert info.value.hint  # every data error says what to do
    return info.value


# ---------------------------------------------------------------- CSV: delimiters


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path: Path, sep: str) -> None:
    rows = [["area", "rooms", "city", "rent"], ["50.5", "2", "Köln", "900"]]
    rows += [[str(40 + i), str(1 + i % 4), f"town {i}", str(700 + 10 * i)] for i in range(10)]
    path = _csv(tmp_path / "data.csv", "\n".join(sep.join(r) for r in rows) + "\n")
    frame = read_table(path).frame
    assert list(frame.columns) == ["area", "rooms", "city", "rent"]
    assert len(frame) == 11
    assert frame["area"].iloc[0] == 50.5
    assert frame["city"].iloc[0] == "Köln"
    assert pd.api.types.is_integer_dtype(frame["rent"])


def test_semicolon_with_decimal_commas_in_quotes(tmp_path: Path) -> None:
    text = 'name;price\n"a, b";1\n"c, d";2\n"e";3\n'
    frame = read_table(_csv(tmp_path / "d.csv", text)).frame
    assert list(frame.columns) == ["name", "price"]
    assert frame["name"].tolist() == ["a, b", "c, d", "e"]


def test_explicit_wrong_delimiter_suggests_right_one(tmp_path: Path) -> None:
    path = _csv(tmp_path / "d.csv", "area;rooms;rent\n50;2;900\n60;3;1000\n")
    err = _read_error(path, delimiter=",")
    assert "one column" in err.message
    assert "';'" in err.message
    assert err.hint is not None
    assert "data.delimiter = ';'" in err.hint


def test_explicit_right_delimiter(tmp_path: Path) -> None:
    path = _csv(tmp_path / "d.txt", "a|b\n1|2\n3|4\n")
    assert list(read_table(path, delimiter="|").frame.columns) == ["a", "b"]


def test_single_column_file_is_fine(tmp_path: Path) -> None:
    frame = read_table(_csv(tmp_path / "d.csv", "rent\n900\n1000\n")).frame
    assert frame["rent"].tolist() == [900, 1000]


def test_ragged_rows_are_a_data_error(tmp_path: Path) -> None:
    err = _read_error(_csv(tmp_path / "d.csv", "a,b\n1,2\n3,4,5\n6,7\n"))
    assert "cannot parse" in err.message
    assert "','" in err.message


# ---------------------------------------------------------------- CSV: normalisation


def test_header_spaces_stripped_with_note(tmp_path: Path) -> None:
    path = _csv(tmp_path / "d.csv", "area ,rent  ,city\n50,900,x\n60,1000,y\n")
    dataset = read_table(path)
    assert list(dataset.frame.columns) == ["area", "rent", "city"]
    assert len(dataset.notes) == 1
    assert "stripped spaces" in dataset.notes[0]
    assert "'area '" in dataset.notes[0]
    assert "'rent  '" in dataset.notes[0]
    assert "city" not in dataset.notes[0]


def test_clean_file_has_no_notes(tmp_path: Path) -> None:
    dataset = read_table(_csv(tmp_path / "d.csv", "a,b\n1,x\n2,y\n"))
    assert dataset.notes == []
    assert dataset.mixed_types == {}
    assert dataset.source == str(tmp_path / "d.csv")


def test_textual_nulls_become_nan_and_column_numeric(tmp_path: Path) -> None:
    text = "area,rooms,energy\n50.5,None,A\n60,2,NULL\n70,n/a,B\n80,3,-\n90,4,C\n"
    dataset = read_table(_csv(tmp_path / "d.csv", text))
    frame = dataset.frame
    assert pd.api.types.is_float_dtype(frame["rooms"])
    assert frame["rooms"].isna().tolist() == [True, False, True, False, False]
    assert frame["rooms"].sum() == 9
    assert frame["energy"].isna().tolist() == [False, True, False, True, False]
    assert frame["energy"].dropna().tolist() == ["A", "B", "C"]
    rooms_note = next(n for n in dataset.notes if "'rooms'" in n)
    assert "2 textual nulls" in rooms_note
    assert "None" in rooms_note
    assert "n/a" in rooms_note
    energy_note = next(n for n in dataset.notes if "'energy'" in n)
    assert "2 textual nulls" in energy_note
    assert dataset.mixed_types == {}


def test_numbers_with_spaces_become_numeric(tmp_path: Path) -> None:
    frame = read_table(_csv(tmp_path / "d.csv", "a,b\n1, 2 \n3,4 \n5,NA\n")).frame
    assert pd.api.types.is_numeric_dtype(frame["b"])
    assert frame["b"].iloc[:2].tolist() == [2, 4]


def test_mostly_numeric_column_is_mixed_types(tmp_path: Path) -> None:
    values = [str(100 + i) for i in range(30)] + ["unknown", "ask landlord", "unknown"]
    text = "id,rent\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values))
    dataset = read_table(_csv(tmp_path / "d.csv", text))
    assert set(dataset.mixed_types) == {"rent"}
    assert dataset.mixed_types["rent"] == ["unknown", "ask landlord"]
    # values are kept as they are, not silently turned into NaN
    assert not pd.api.types.is_numeric_dtype(dataset.frame["rent"])
    assert dataset.frame["rent"].iloc[-1] == "unknown"


def test_mostly_text_column_is_not_mixed_types(tmp_path: Path) -> None:
    values = ["flat", "house", "loft", "1", "2"] * 4
    text = "kind\n" + "\n".join(values) + "\n"
    dataset = read_table(_csv(tmp_path / "d.csv", text))
    assert dataset.mixed_types == {}


# ---------------------------------------------------------------- CSV: encodings

WESTERN_ROWS = [
    ("München", "Crème brûlée"),
    ("Köln", "Château"),
    ("Düsseldorf", "Façade à côté"),
    ("Würzburg", "Hôtel de ville"),
    ("Saarbrücken", "Noël déjà vu"),
    ("Lübeck", "Garçon Straße"),
]


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_western_encoding_is_detected_with_note(tmp_path: Path, encoding: str) -> None:
    rows = WESTERN_ROWS * 4
    text = "city,note,rent\n" + "".join(f"{c},{n},{900 + i}\n" for i, (c, n) in enumerate(rows))
    dataset = read_table(_csv(tmp_path / "d.csv", text, encoding))
    assert len(dataset.notes) == 1
    assert "d.csv is not UTF-8; read it as" in dataset.notes[0]
    # the values must come back as written, not as mojibake from a wrong code page
    assert dataset.frame["city"].tolist() == [c for c, _ in rows]
    assert dataset.frame["note"].tolist() == [n for _, n in rows]


def test_cp1252_only_characters(tmp_path: Path) -> None:
    # € and – exist in cp1252 but not in latin-1
    text = "item,price\n" + "".join(f"Miete – Nr {i},{i} €\n" for i in range(20))
    dataset = read_table(_csv(tmp_path / "d.csv", text, "cp1252"))
    assert "not UTF-8" in dataset.notes[0]
    assert dataset.frame["item"].iloc[3] == "Miete – Nr 3"
    assert dataset.frame["price"].iloc[3] == "3 €"


def test_explicit_encoding_is_used_without_note(tmp_path: Path) -> None:
    text = "city,rent\n" + "".join(f"{c},{i}\n" for i, (c, _) in enumerate(WESTERN_ROWS))
    dataset = read_table(_csv(tmp_path / "d.csv", text, "cp1252"), encoding="cp1252")
    assert dataset.notes == []
    assert dataset.frame["city"].tolist() == [c for c, _ in WESTERN_ROWS]


def test_explicit_wrong_encoding_is_a_data_error(tmp_path: Path) -> None:
    path = _csv(tmp_path / "d.csv", "city,rent\nMünchen,1\nKöln,2\n", "cp1252")
    err = _read_error(path, encoding="utf-8")
    assert "cannot be decoded as utf-8" in err.message
    assert err.hint is not None
    assert "data.encoding" in err.hint
    err = _read_error(path, encoding="no-such-codec")
    assert "no-such-codec" in err.message


def test_utf8_bom_is_not_part_of_the_header(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"\xef\xbb\xbfarea,rent\n1,2\n3,4\n")
    dataset = read_table(path)
    assert list(dataset.frame.columns) == ["area", "rent"]
    assert dataset.notes == []


# ---------------------------------------------------------------- unreadable files


def test_png_is_not_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)))
    err = _read_error(path)
    assert "not a CSV or Parquet" in err.message
    assert str(path) in err.message


def test_binary_garbage_is_not_a_csv(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "blob.dat"
    path.write_bytes(bytes(rng.randrange(256) for _ in range(4096)) + b"\x00")
    assert "not a CSV or Parquet" in _read_error(path).message


def test_missing_file(tmp_path: Path) -> None:
    err = _read_error(tmp_path / "nope.csv")
    assert "does not exist" in err.message
    assert "nope.csv" in err.message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    err = _read_error(path)
    assert "empty (0 bytes)" in err.message


@pytest.mark.parametrize("text", ["area,rent\n", "area,rent", "area,rent\n\n\n"])
def test_header_only_file(tmp_path: Path, text: str) -> None:
    err = _read_error(_csv(tmp_path / "h.csv", text))
    assert "has a header but no rows" in err.message


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "data.csv"
    folder.mkdir()
    err = _read_error(folder)
    assert "is a folder" in err.message


@pytest.mark.parametrize(
    ("header", "dupe"),
    [("area,rent,area", "area"), ("area,rent,area ", "area"), ("a,b,b,a,c", "a, b")],
)
def test_duplicate_column_names(tmp_path: Path, header: str, dupe: str) -> None:
    n = len(header.split(","))
    body = ",".join(str(i) for i in range(n))
    err = _read_error(_csv(tmp_path / "d.csv", f"{header}\n{body}\n{body}\n"))
    assert f"duplicate column names: {dupe}" in err.message


# ---------------------------------------------------------------- Parquet and writing


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "area": [50.5, np.nan, 80.25, 31.0],
            "city": ["Köln", "Berlin", None, "Bonn"],
            "balcony": [True, False, True, False],
            "listed": pd.to_datetime(["2024-01-01", "2024-02-03", "2024-03-05", "2024-04-07"]),
        }
    )


def test_parquet_round_trip(tmp_path: Path) -> None:
    frame = _frame()
    path = write_table(frame, tmp_path / "sub" / "data.parquet")
    assert path.is_file()
    dataset = read_table(path)
    assert dataset.notes == []
    pd.testing.assert_frame_equal(dataset.frame, frame, check_dtype=False)
    assert pd.api.types.is_bool_dtype(dataset.frame["balcony"])
    assert pd.api.types.is_datetime64_any_dtype(dataset.frame["listed"])
    assert dataset.digest == frame_digest(dataset.frame)


def test_parquet_detected_by_content(tmp_path: Path) -> None:
    write_table(_frame(), tmp_path / "data.parquet")
    renamed = tmp_path / "data.bin"
    (tmp_path / "data.parquet").rename(renamed)
    assert read_table(renamed).frame["id"].tolist() == [1, 2, 3, 4]


def test_csv_round_trip(tmp_path: Path) -> None:
    frame = _frame().drop(columns=["listed"])
    path = write_table(frame, tmp_path / "data.csv")
    back = read_table(path).frame
    assert back["id"].tolist() == [1, 2, 3, 4]
    assert back["area"].iloc[0] == 50.5
    assert np.isnan(back["area"].iloc[1])
    assert back["city"].iloc[0] == "Köln"


def test_damaged_parquet(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1" + b"x" * 100)
    err = _read_error(path)
    assert "not a readable Parquet file" in err.message


def test_csv_named_parquet(tmp_path: Path) -> None:
    path = _csv(tmp_path / "d.parquet", "a,b\n1,2\n")
    assert "not a readable Parquet file" in _read_error(path).message


def test_empty_parquet(tmp_path: Path) -> None:
    path = write_table(_frame().iloc[:0], tmp_path / "d.parquet")
    assert "has no rows" in _read_error(path).message


def test_write_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown format"):
        write_table(_frame(), tmp_path / "data.xlsx")


# ---------------------------------------------------------------- digest


def test_frame_digest_ignores_index() -> None:
    frame = _frame()
    shifted = frame.set_axis([10, 20, 30, 40])
    assert frame_digest(frame) == frame_digest(shifted)
    assert frame_digest(frame) == frame_digest(frame.copy())
    assert frame_digest(frame) == frame_digest(frame.iloc[::-1].iloc[::-1])


def test_frame_digest_sees_content() -> None:
    frame = _frame()
    base = frame_digest(frame)
    changed = frame.copy()
    changed.loc[2, "area"] = 80.26
    assert frame_digest(changed) != base
    text_changed = frame.copy()
    text_changed.loc[0, "city"] = "Koeln"
    assert frame_digest(text_changed) != base
    assert frame_digest(frame.rename(columns={"area": "size"})) != base
    assert frame_digest(frame.iloc[::-1]) != base  # row order is content
    assert frame_digest(frame.iloc[:3]) != base


def test_frame_digest_of_empty_frames() -> None:
    assert frame_digest(pd.DataFrame({"a": []})) != frame_digest(pd.DataFrame({"b": []}))
    assert len(frame_digest(pd.DataFrame())) == 64


def test_dataset_digest_matches_frame_digest() -> None:
    frame = _frame()
    assert Dataset(frame=frame, source="x").digest == frame_digest(frame)


# ---------------------------------------------------------------- SQL


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    path = tmp_path / "rent.db"
    with sqlite3.connect(path) as conn:
        pd.DataFrame(
            {"id": [1, 2, 3], "area": [50.0, 60.5, 70.0], "city": ["Köln", "None", "Bonn"]}
        ).to_sql("rent", conn, index=False)
        conn.execute("CREATE TABLE empty (a INTEGER)")
    return f"sqlite:///{path}"


def test_read_sql_table(sqlite_url: str) -> None:
    dataset = read_sql(sqlite_url, table="rent")
    assert dataset.frame["id"].tolist() == [1, 2, 3]
    assert dataset.frame["area"].tolist() == [50.0, 60.5, 70.0]
    assert dataset.frame["city"].isna().tolist() == [False, True, False]  # textual null
    assert any("textual nulls" in note for note in dataset.notes)
    assert dataset.source == f"{sqlite_url} (rent)"


def test_read_sql_query(sqlite_url: str) -> None:
    dataset = read_sql(sqlite_url, query="SELECT id, area FROM rent WHERE area > 55")
    assert list(dataset.frame.columns) == ["id", "area"]
    assert dataset.frame["id"].tolist() == [2, 3]


def test_read_sql_empty_result(sqlite_url: str) -> None:
    with pytest.raises(DataError, match="returned no rows"):
        read_sql(sqlite_url, table="empty")
    with pytest.raises(DataError, match="returned no rows"):
        read_sql(sqlite_url, query="SELECT * FROM rent WHERE id > 99")


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"table": "no_such_table"}, "no_such_table"),
        ({"query": "SELEC id FROM rent"}, "SELEC"),
    ],
)
def test_read_sql_bad_table_or_query(sqlite_url: str, kw: dict[str, str], fragment: str) -> None:
    with pytest.raises(DataError) as info:
        read_sql(sqlite_url, **kw)
    assert type(info.value) is DataError
    assert fragment in str(info.value) or "data.table" in str(info.value)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("notadb://x/y", "invalid database URL"),
        ("not a url at all", "invalid database URL"),
        ("postgresql+psycopg://postgres@127.0.0.1:1/none", "cannot read from"),
        ("sqlite:////no/such/folder/x.db", "does not exist"),
    ],
)
def test_read_sql_bad_url(url: str, fragment: str) -> None:
    with pytest.raises(DataError) as info:
        read_sql(url, table="rent")
    assert type(info.value) is DataError
    assert fragment in info.value.message
    assert "Traceback" not in str(info.value)


def test_read_sql_error_masks_password() -> None:
    with pytest.raises(DataError) as info:
        read_sql("postgresql+psycopg://app:hunter2secret@127.0.0.1:1/none", table="rent")
    assert "hunter2secret" not in str(info.value)
    assert "app:********@127.0.0.1:1/none" in info.value.message


def test_read_source_file_relative_to_root(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    _csv(tmp_path / "data" / "d.csv", "a;b\n1;2\n3;4\n")
    source = DataSource(path=Path("data/d.csv"), delimiter=";")
    frame = read_source(source, tmp_path).frame
    assert list(frame.columns) == ["a", "b"]


def test_read_source_override_wins(tmp_path: Path) -> None:
    other = _csv(tmp_path / "other.csv", "x,y\n1,2\n")
    source = DataSource(path=Path("data/missing.csv"))
    assert list(read_source(source, tmp_path, override=other).frame.columns) == ["x", "y"]


def test_read_source_sql(sqlite_url: str, tmp_path: Path) -> None:
    source = DataSource(url=sqlite_url, query="SELECT city FROM rent WHERE id = 1")
    assert read_source(source, tmp_path).frame["city"].tolist() == ["Köln"]


@pytest.mark.postgres
def test_postgres_round_trip(postgres_url: str, pg_table: str, tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    frame = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "area": [50.5, None, 80.0, 31.25],
            "city": ["Köln", "Berlin", None, "NULL"],
            "balcony": [True, False, True, True],
            "listed": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]),
        }
    )
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            frame.to_sql(pg_table, conn, index=False)
    finally:
        engine.dispose()

    by_table = read_sql(postgres_url, table=pg_table)
    got = by_table.frame
    assert got["id"].tolist() == [1, 2, 3, 4]
    assert got["area"].iloc[[0, 2, 3]].tolist() == [50.5, 80.0, 31.25]
    assert np.isnan(got["area"].iloc[1])
    assert got["city"].iloc[:2].tolist() == ["Köln", "Berlin"]
    assert got["city"].iloc[2:].isna().all()  # a real NULL and the text "NULL"
    assert got["balcony"].tolist() == [True, False, True, True]
    assert pd.api.types.is_datetime64_any_dtype(got["listed"])
    assert pg_table in by_table.source

    by_query = read_sql(postgres_url, query=f'SELECT id, area FROM "{pg_table}" WHERE id >= 3')
    assert list(by_query.frame.columns) == ["id", "area"]
    assert by_query.frame["id"].tolist() == [3, 4]

    spec_source = DataSource(url=postgres_url, table=pg_table)
    through_spec = read_source(spec_source, tmp_path)
    assert through_spec.digest == by_table.digest


@pytest.mark.postgres
def test_postgres_missing_table(postgres_url: str, pg_table: str) -> None:
    with pytest.raises(DataError) as info:
        read_sql(postgres_url, table=pg_table)
    assert type(info.value) is DataError
    assert pg_table in str(info.value)
