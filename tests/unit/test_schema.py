"""FeatureSchema: kinds, roles, task inference, profiles, persistence and fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelcycle.data.schema import (
    HIGH_CARDINALITY,
    MAX_CATEGORIES,
    QUANTILES,
    SCHEMA_FORMAT,
    FeatureSchema,
    infer_task,
    missing_column_error,
)
from modelcycle.errors import DataError

N = 120


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "order_id": [f"o-{i:05d}" for i in range(N)],
            "area": rng.uniform(20, 200, N).round(1),
            "rooms": rng.integers(1, 6, N),
            "energy": rng.choice(list("ABCDEFG"), N),
            "balcony": rng.choice([True, False], N),
            "listed": pd.date_range("2024-01-01", periods=N, freq="D").strftime("%Y-%m-%d"),
            "signed": pd.date_range("2023-01-01", periods=N, freq="7D"),
            "description": [f"bright flat {i} with a view of tree {i * 7}" for i in range(N)],
            "constant": ["same"] * N,
            "internal": rng.integers(0, 3, N),
            "rent": rng.uniform(300, 3000, N),
        }
    )


@pytest.fixture
def schema(frame: pd.DataFrame) -> FeatureSchema:
    return FeatureSchema.infer(
        frame,
        target="rent",
        id_column="order_id",
        time_column="signed",
        drop=["internal"],
        source="flats.csv",
        data_digest="abc",
    )


def test_kinds_and_roles(schema: FeatureSchema) -> None:
    shape = {c.name: (c.kind, c.role) for c in schema.columns}
    assert shape == {
        "order_id": ("text", "id"),
        "area": ("numeric", "feature"),
        "rooms": ("numeric", "feature"),
        "energy": ("categorical", "feature"),
        "balcony": ("boolean", "feature"),
        "listed": ("datetime", "feature"),
        "signed": ("datetime", "time"),
        "description": ("text", "ignored"),
        "constant": ("categorical", "feature"),
        "internal": ("numeric", "ignored"),
        "rent": ("numeric", "target"),
    }
    assert schema.names == list(shape)  # column order is kept
    assert schema.target == "rent"
    assert schema.task == "regression"
    assert schema.n_rows == N
    assert schema.source == "flats.csv"
    assert schema.data_digest == "abc"
    assert schema.format == SCHEMA_FORMAT
    assert schema.feature_names == ["area", "rooms", "energy", "balcony", "listed", "constant"]


def test_roles_carry_reasons(schema: FeatureSchema) -> None:
    assert schema.column("description").reason == "free text with a different value on most rows"
    assert schema.column("internal").reason == "listed in `drop`"
    assert "constant" in schema.column("constant").reason
    assert schema.column("constant").constant is True
    assert schema.column("area").reason == ""
    assert schema.column("area").constant is False


def test_free_text_ignored_without_explicit_roles(frame: pd.DataFrame) -> None:
    schema = FeatureSchema.infer(frame, target="rent")
    assert schema.column("order_id").role == "ignored"
    assert schema.column("order_id").high_cardinality is True
    assert schema.column("description").role == "ignored"
    assert schema.column("signed").role == "feature"


def test_date_strings_with_few_distinct_values_are_datetime() -> None:
    # monthly data: many rows share a date, so the column has few distinct values
    dates = pd.date_range("2024-01-01", periods=24, freq="MS").strftime("%Y-%m-%d")
    frame = pd.DataFrame({"month": np.repeat(dates, 5), "y": np.arange(120) * 1.5})
    assert FeatureSchema.infer(frame, target="y").column("month").kind == "datetime"
    timed = FeatureSchema.infer(frame, target="y", time_column="month")
    assert timed.column("month").kind == "datetime"


def test_column_lookup_unknown(schema: FeatureSchema) -> None:
    with pytest.raises(DataError, match="no column 'nope'"):
        schema.column("nope")


@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([1.5, 2.25, 3.75, 4.0, 5.5, 6.125], "regression"),
        ([0, 1, 1, 0, 1], "classification"),
        ([0.0, 1.0, 1.0, np.nan], "classification"),
        (["yes", "no", "no"], "classification"),
        (["low", "mid", "high", "mid"], "classification"),
        ([True, False, True], "classification"),
        ([1, 2, 3, 4, 5, 1, 2], "classification"),
        (list(range(20)), "classification"),
        (list(range(21)), "regression"),
        ([float(v) for v in range(1, 40)], "regression"),
        ([500, 1200], "classification"),
    ],
)
def test_infer_task(values: list[object], task: str) -> None:
    assert infer_task(pd.Series(values)) == task


def test_task_given_is_kept(frame: pd.DataFrame) -> None:
    schema = FeatureSchema.infer(frame, target="rooms", task="regression")
    assert schema.task == "regression"
    assert FeatureSchema.infer(frame, target="rooms").task == "classification"
    assert FeatureSchema.infer(frame).task is None
    assert FeatureSchema.infer(frame).target is None


def test_numeric_stats_match_numpy() -> None:
    values = np.array([3.0, 1.5, np.nan, 10.0, 7.25, np.inf, -2.0, 4.0, np.nan, 8.5])
    schema = FeatureSchema.infer(pd.DataFrame({"x": values}))
    col = schema.column("x")
    finite = values[np.isfinite(values)]
    assert col.min == finite.min() == -2.0
    assert col.max == finite.max() == 10.0
    assert col.mean == pytest.approx(finite.mean())
    assert col.std == pytest.approx(finite.std())
    expected = np.quantile(finite, QUANTILES)
    assert list(col.quantiles) == ["0", "0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99", "1"]
    assert list(col.quantiles.values()) == pytest.approx(expected.tolist())
    assert col.quantiles["0.5"] == pytest.approx(np.median(finite))
    assert col.null_rate == pytest.approx(2 / 10)
    assert col.nullable is True
    assert col.n_unique == 8  # inf counts as a value, NaN does not
    assert col.integer is False


def test_integer_flag_and_not_nullable() -> None:
    col = FeatureSchema.infer(pd.DataFrame({"x": [1, 2, 3, 2]})).column("x")
    assert col.integer is True
    assert col.nullable is False
    assert col.null_rate == 0.0
    assert col.dtype == "int64"
    whole_floats = FeatureSchema.infer(pd.DataFrame({"x": [1.0, 2.0, np.nan]})).column("x")
    assert whole_floats.integer is True


def test_category_shares(schema: FeatureSchema, frame: pd.DataFrame) -> None:
    col = schema.column("energy")
    expected = frame["energy"].value_counts(normalize=True)
    assert col.categories == pytest.approx(expected.to_dict())
    assert sum(col.categories.values()) + col.other_share == pytest.approx(1.0)
    assert col.other_share == 0.0
    assert col.high_cardinality is False
    assert list(col.categories.values()) == sorted(col.categories.values(), reverse=True)


def test_boolean_categories(schema: FeatureSchema) -> None:
    col = schema.column("balcony")
    assert set(col.categories) == {"True", "False"}
    assert sum(col.categories.values()) == pytest.approx(1.0)


def test_high_cardinality_categories() -> None:
    n_cats = HIGH_CARDINALITY + 20
    # each category appears 4 times, so values repeat (not free text) but are too many
    values = [f"zip{i:03d}" for i in range(n_cats)] * 4
    col = FeatureSchema.infer(pd.DataFrame({"zip": values})).column("zip")
    assert col.kind == "categorical"
    assert col.role == "feature"
    assert col.high_cardinality is True
    assert col.n_unique == n_cats
    assert len(col.categories) == MAX_CATEGORIES
    assert col.other_share == pytest.approx(20 / n_cats)
    assert sum(col.categories.values()) + col.other_share == pytest.approx(1.0)


def test_datetime_span(schema: FeatureSchema, frame: pd.DataFrame) -> None:
    col = schema.column("signed")
    assert col.min == frame["signed"].min().timestamp()
    assert col.max == frame["signed"].max().timestamp()


def test_all_null_column() -> None:
    col = FeatureSchema.infer(pd.DataFrame({"x": [np.nan] * 4, "y": [1, 2, 3, 4]})).column("x")
    assert col.null_rate == 1.0
    assert col.constant is True
    assert col.min is None
    assert col.quantiles == {}


def test_save_load_round_trip(schema: FeatureSchema, tmp_path: Path) -> None:
    path = schema.save(tmp_path / "nested" / "schema.json")
    assert path.is_file()
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["format"] == SCHEMA_FORMAT
    assert [c["name"] for c in raw["columns"]] == schema.names
    loaded = FeatureSchema.load(path)
    assert loaded == schema
    assert loaded.fingerprint == schema.fingerprint


def test_load_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        FeatureSchema.load(tmp_path / "schema.json")
    assert "does not exist" in info.value.message
    assert info.value.hint is not None
    assert "modelcycle data schema" in info.value.hint


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "is not a JSON schema file"),
        (b"\xff\xfe\x00garbage", "is not a JSON schema file"),
        (b"[]", "is not a modelcycle schema"),
        (b'"text"', "is not a modelcycle schema"),
        (b'{"columns": 3}', "is not a modelcycle schema"),
        (b'{"format": 2, "columns": []}', "newer modelcycle"),
        (b'{"format": "1"}', "schema"),
        (b'{"format": null, "columns": []}', "schema"),
    ],
)
def test_load_bad_file(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "schema.json"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        FeatureSchema.load(path)
    assert type(info.value) is DataError
    assert fragment in info.value.message
    assert str(path) in info.value.message


def test_load_extra_key_rejected(schema: FeatureSchema, tmp_path: Path) -> None:
    raw = json.loads(schema.model_dump_json())
    raw["columns"][0]["surprise"] = 1
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(DataError, match="is not a modelcycle schema"):
        FeatureSchema.load(path)


def test_fingerprint_depends_on_shape_only(frame: pd.DataFrame) -> None:
    first = FeatureSchema.infer(frame, target="rent")
    shuffled = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    other_values = shuffled.assign(area=shuffled["area"] * 2, rent=shuffled["rent"] + 1)
    second = FeatureSchema.infer(other_values, target="rent", source="elsewhere")
    assert second.column("area").mean != first.column("area").mean
    assert first.fingerprint == second.fingerprint
    assert len(first.fingerprint) == 16


def test_fingerprint_changes_with_kind_role_or_name(frame: pd.DataFrame) -> None:
    base = FeatureSchema.infer(frame, target="rent").fingerprint
    as_text = frame.assign(rooms=frame["rooms"].map(lambda v: f"{v} rooms"))
    assert FeatureSchema.infer(as_text, target="rent").column("rooms").kind == "categorical"
    assert FeatureSchema.infer(as_text, target="rent").fingerprint != base
    assert FeatureSchema.infer(frame, target="rent", drop=["rooms"]).fingerprint != base
    renamed = frame.rename(columns={"rooms": "n_rooms"})
    assert FeatureSchema.infer(renamed, target="rent").fingerprint != base


@pytest.mark.parametrize(
    ("kw", "label", "close"),
    [
        ({"target": "rnet"}, "target", "rent"),
        ({"target": "rent", "id_column": "order_idd"}, "id_column", "order_id"),
        ({"target": "rent", "time_column": "singed"}, "time_column", "signed"),
    ],
)
def test_missing_named_column(
    frame: pd.DataFrame, kw: dict[str, str], label: str, close: str
) -> None:
    with pytest.raises(DataError) as info:
        FeatureSchema.infer(frame, **kw)
    err = info.value
    missing = next(v for k, v in kw.items() if k == label)
    assert f"{label} column {missing!r} is not in the data" in err.message
    assert "area" in err.message  # the columns that exist are listed
    assert err.hint is not None
    assert f"did you mean {close!r}?" in err.hint
    assert f"fix `{label}`" in err.hint


def test_missing_column_error_without_close_match() -> None:
    err = missing_column_error("price", ["area", "rooms"], "target")
    assert err.hint is not None
    assert "did you mean" not in err.hint
    assert "(columns: area, rooms)" in err.message


def test_missing_column_error_single_column_hints_delimiter() -> None:
    err = missing_column_error("rent", ["area;rooms;rent"], "target")
    assert err.hint is not None
    assert "data.delimiter" in err.hint


def test_missing_column_error_truncates_long_lists() -> None:
    names = [f"c{i}" for i in range(30)]
    err = missing_column_error("target", names, "target")
    assert "c19 ..." in err.message
    assert "c20" not in err.message
