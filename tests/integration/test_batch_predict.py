"""Batch inference on real files with a real registered model: ``predict_file``.

One MLflow store per module holds a rent regression model (the real preprocessing from the
FeatureSchema + LightGBM) and a late-payment classifier; every test predicts CSV or Parquet files
of the rent example and checks the output against ``LoadedModel.predict`` on the same rows.
Logged runs write to a real SQLite file and (marked ``postgres``) a PostgreSQL schema.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from modelcycle.data.examples import rent_apartments, rent_default
from modelcycle.data.io import read_table
from modelcycle.data.records import LabelRecord
from modelcycle.data.schema import FeatureSchema
from modelcycle.errors import DataError
from modelcycle.metrics import compute_metrics
from modelcycle.monitoring.ood import OODDetector
from modelcycle.registry.bundle import ModelBundle
from modelcycle.registry.store import LoadedModel, load_model, register
from modelcycle.serving.batch import (
    DEFAULT_CHUNK_SIZE,
    count_rows,
    default_errors_path,
    log_chunk,
    predict_file,
    request_ids,
)
from modelcycle.serving.inputs import InputRules
from modelcycle.store import insert_labels, make_engine, upgrade, window

ROWS = 1_050
SUFFIX = {"csv": ".csv", "parquet": ".parquet"}


# ------------------------------------------------------------------------------------ models


def _bundle(name: str, frame: pd.DataFrame, target: str, drop: list[str], estimator: Any) -> Any:
    from sklearn.pipeline import Pipeline

    from modelcycle.training.features import build_preprocessor

    schema = FeatureSchema.infer(frame, target=target, drop=drop, source="synthetic")
    task = schema.task
    assert task is not None
    features = schema.input_names
    pre = build_preprocessor(schema, scale=True, task=task)
    pipeline = Pipeline([("preprocess", pre), ("model", estimator)]).fit(
        frame[features], frame[target]
    )
    y = frame[target].to_numpy()
    classes = list(pipeline.classes_) if task == "classification" else None
    if task == "regression":
        model = compute_metrics(task, y, pipeline.predict(frame[features]))
        metric = "mae"
    else:
        proba = pipeline.predict_proba(frame[features])[:, 1]
        model = compute_metrics(task, y, proba, threshold=0.5, classes=classes)
        metric = "f1"
    return ModelBundle(
        name=name,
        pipeline=pipeline,
        schema=schema,
        task=task,
        metric=metric,
        metrics={"model": model},
        baseline="model",
        profile={},
        candidate=type(estimator).__name__,
        params={},
        data_digest=f"{name}-digest",
        spec_hash=f"{name}-spec",
        training_rows=len(frame),
        input_example=frame[features].head(5),
        threshold=0.5 if task == "classification" else None,
        classes=classes,
        ood=OODDetector().fit(frame[features]),
    )


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An MLflow store with ``rent`` (LightGBM regression) and ``late`` (a classifier)."""
    from lightgbm import LGBMRegressor
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("batch-registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    before = Path.cwd()
    os.chdir(root)  # registering must not write ./mlruns into the current folder
    try:
        # trained on the data as modelcycle reads it from a file, as `modelcycle train` does
        rent = read_table(write(rent_apartments(2000, seed=3, messy=False), root / "rent.csv"))
        rent = rent.frame
        register(
            _bundle("rent", rent, "rent", ["address", "zip"],
                    LGBMRegressor(n_estimators=40, verbose=-1, random_state=0)),
            tracking_uri=uri,
            artifact_dir=root / "artifacts",
        )  # fmt: skip
        late = rent_default(1500, seed=3).drop(columns=["contract_start"])
        late["late_payment"] = np.where(late["late_payment"] == 1, "late", "on_time")
        register(
            _bundle("late", late, "late_payment", ["tenant_id"], LogisticRegression(max_iter=500)),
            tracking_uri=uri,
            artifact_dir=root / "artifacts",
        )
    finally:
        os.chdir(before)
    return uri


@pytest.fixture(scope="module")
def rent_model(registry: str) -> LoadedModel:
    return load_model("rent@champion", tracking_uri=registry)


@pytest.fixture(scope="module")
def late_model(registry: str) -> LoadedModel:
    return load_model("late@champion", tracking_uri=registry)


@pytest.fixture(scope="module")
def rent_rows() -> pd.DataFrame:
    """New apartments to predict (other seed than training), with their true rent."""
    return rent_apartments(ROWS, seed=7, messy=False)


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def expected_predictions(model: LoadedModel, path: Path) -> np.ndarray:
    """``LoadedModel.predict`` on the whole file, read as modelcycle reads data."""
    return model.predict(read_table(path).frame)["prediction"].to_numpy()


# --------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip_matches_model_predict(fmt, tmp_path, rent_model, rent_rows) -> None:
    source = write(rent_rows, tmp_path / f"apartments{SUFFIX[fmt]}")
    result = predict_file(rent_model, source, tmp_path / f"predictions{SUFFIX[fmt]}")

    assert (result.rows_in, result.rows_predicted, result.rows_failed) == (ROWS, ROWS, 0)
    assert result.model == "rent/1"
    assert result.output == tmp_path / f"predictions{SUFFIX[fmt]}"
    assert result.errors is None
    assert not default_errors_path(result.output).exists()
    assert result.rows_per_second > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name, result.output.name]

    out = read(result.output)
    assert list(out.columns) == [*rent_rows.columns, "prediction", "request_id"]
    np.testing.assert_allclose(
        out["prediction"], expected_predictions(rent_model, source), rtol=1e-12
    )
    assert out["request_id"].tolist() == [f"{result.batch_id}-{i}" for i in range(ROWS)]
    assert len(result.batch_id) == 16
    echoed = out[list(rent_rows.columns)]
    pd.testing.assert_frame_equal(echoed, read_table(source).frame, check_dtype=False)


def test_csv_in_parquet_out_and_back(tmp_path, rent_model, rent_rows) -> None:
    source = write(rent_rows, tmp_path / "apartments.csv")
    to_parquet = predict_file(rent_model, source, tmp_path / "p.parquet", chunk_size=100)
    again = predict_file(rent_model, to_parquet.output, tmp_path / "again.csv", chunk_size=300)
    first, second = read(to_parquet.output), read(again.output)
    np.testing.assert_allclose(second["prediction"], first["prediction"], rtol=1e-12)
    assert again.notes == (
        "replaced the input's 'prediction', 'request_id' with the new predictions",
    )
    assert list(second.columns) == list(first.columns)
    assert second["request_id"].str.startswith(again.batch_id).all()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_chunk_size_does_not_change_the_output(fmt, tmp_path, rent_model, rent_rows) -> None:
    source = write(rent_rows, tmp_path / f"apartments{SUFFIX[fmt]}")
    seen: list[int] = []
    small = predict_file(
        rent_model, source, tmp_path / f"small{SUFFIX[fmt]}", chunk_size=100, progress=seen.append
    )
    whole = predict_file(rent_model, source, tmp_path / f"whole{SUFFIX[fmt]}")
    assert seen == [100] * 10 + [50]
    a, b = read(small.output), read(whole.output)
    pd.testing.assert_frame_equal(a.drop(columns="request_id"), b.drop(columns="request_id"))
    rows = a["request_id"].str.rsplit("-", n=1).str[1].astype(int)
    assert rows.tolist() == list(range(ROWS))
    assert small.batch_id != whole.batch_id
    if fmt == "parquet":
        import pyarrow.parquet as pq

        assert pq.ParquetFile(small.output).metadata.num_row_groups == 11  # one per chunk


# ----------------------------------------------------------------------------------- bad rows

BAD = {  # input row -> (column, value, the reason the errors file gives)
    3: ("area", "abc", "'area': expected a number, got 'abc'"),
    10: ("area", None, "'area': missing required value"),
    20: ("area", "inf", "'area': must be finite, got 'inf'"),
    30: ("rooms", "two", "'rooms': expected a number, got 'two'"),
    640: ("area", "None", "'area': missing required value"),  # a textual null, in a later chunk
}


def _with_bad_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Numbers as text (one type per column, as Parquet needs), with :data:`BAD` planted."""
    frame = rows.astype({"area": "string", "rooms": "string"})
    for row, (column, value, _) in BAD.items():
        frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_bad_rows_go_to_the_errors_file(fmt, tmp_path, rent_model, rent_rows) -> None:
    rules = InputRules(rent_model.schema)
    assert {r.name for r in rules.features if r.required} >= {"area", "rooms"}
    source = write(_with_bad_rows(rent_rows), tmp_path / f"apartments{SUFFIX[fmt]}")
    result = predict_file(rent_model, source, tmp_path / f"out{SUFFIX[fmt]}", chunk_size=200)

    assert (result.rows_in, result.rows_predicted, result.rows_failed) == (ROWS, ROWS - 5, 5)
    assert result.errors == tmp_path / f"out.errors{SUFFIX[fmt]}"
    errors = read(result.errors)
    assert list(errors.columns) == [*rent_rows.columns, "row", "reason"]
    assert errors["row"].tolist() == sorted(BAD)
    for (_, line), row in zip(errors.iterrows(), sorted(BAD), strict=True):
        assert line["reason"] == BAD[row][2]
    assert str(errors.loc[0, "area"]) == "abc"
    assert errors.loc[0, "address"] == rent_rows.loc[3, "address"]

    out = read(result.output)
    assert out["area"].dtype == "float64"  # numbers, though the file holds text in that column
    clean = read_table(write(rent_rows, tmp_path / f"clean{SUFFIX[fmt]}")).frame
    good = clean.drop(index=list(BAD))
    assert out["request_id"].tolist() == [f"{result.batch_id}-{i}" for i in good.index]
    np.testing.assert_allclose(
        out["prediction"], rent_model.predict(good)["prediction"], rtol=1e-12
    )


def test_every_row_failing_writes_only_the_errors_file(tmp_path, rent_model, rent_rows) -> None:
    frame = rent_rows.head(30).assign(area="unknown")
    source = write(frame, tmp_path / "apartments.csv")
    stale = tmp_path / "out.csv"
    stale.write_text("an old output\n")
    result = predict_file(rent_model, source, stale)
    assert (result.rows_predicted, result.rows_failed) == (0, 30)
    assert result.output is None
    assert not stale.exists()  # the files on disk describe the last run
    assert len(read(result.errors)) == 30


def test_an_old_errors_file_is_removed_when_nothing_fails(tmp_path, rent_model, rent_rows) -> None:
    source = write(rent_rows.head(20), tmp_path / "apartments.csv")
    old = tmp_path / "custom-errors.csv"
    old.write_text("row,reason\n1,old\n")
    result = predict_file(rent_model, source, tmp_path / "out.csv", errors=old)
    assert result.errors is None
    assert not old.exists()


# ---------------------------------------------------------------------------------- bad input


def test_a_missing_required_column_is_one_clear_error(tmp_path, rent_model, rent_rows) -> None:
    source = write(rent_rows.rename(columns={"area": "Area"}), tmp_path / "apartments.csv")
    with pytest.raises(DataError) as caught:
        predict_file(rent_model, source, tmp_path / "out.csv")
    assert "lacks 1 required feature column of rent/1: area" in caught.value.message
    assert caught.value.hint is not None
    assert "rename 'Area' to 'area'" in caught.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["apartments.csv"]  # nothing left over


def _empty_parquet(path: Path) -> None:
    pd.DataFrame({"area": pd.Series([], dtype="float64")}).to_parquet(path)


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("empty.csv", lambda p: p.write_bytes(b""), r"is empty \(0 bytes\)"),
        ("header.csv", lambda p: p.write_text("area,rooms\n"), "has a header but no rows"),
        ("blank.csv", lambda p: p.write_text("area,rooms\n\n\n"), "has a header but no rows"),
        ("empty.parquet", _empty_parquet, "has no rows"),
        ("broken.parquet", lambda p: p.write_bytes(b"PAR1 not really"), "not a readable Parquet"),
        ("image.csv", lambda p: p.write_bytes(b"\x89PNG\x00\x00"), "not a CSV or Parquet file"),
        ("missing.csv", lambda p: None, "does not exist"),
    ],
)
def test_unusable_inputs_are_clear_errors(name, make, message, tmp_path, rent_model) -> None:
    source = tmp_path / name
    make(source)
    with pytest.raises(DataError, match=message):
        predict_file(rent_model, source, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_output_names_are_checked_before_reading(tmp_path, rent_model, rent_rows) -> None:
    source = write(rent_rows.head(5), tmp_path / "apartments.csv")
    with pytest.raises(DataError, match="unknown format"):
        predict_file(rent_model, source, tmp_path / "out.json")
    with pytest.raises(DataError, match="must be three files"):
        predict_file(rent_model, source, source)
    with pytest.raises(DataError, match="chunk size"):
        predict_file(rent_model, source, tmp_path / "out.csv", chunk_size=0)


def test_parquet_output_keeps_one_type_per_column(tmp_path, rent_model, rent_rows) -> None:
    frame = rent_rows.head(250).copy()
    frame["floor"] = pd.array([1] * 100 + [None] * 50 + [3] * 100, dtype="Int64")
    source = write(frame, tmp_path / "apartments.csv")  # chunk 1: ints, chunk 2: blanks
    result = predict_file(rent_model, source, tmp_path / "out.parquet", chunk_size=100)
    out = read(result.output)
    assert out["floor"].isna().sum() == 50
    assert out["floor"].dropna().tolist() == [1] * 100 + [3] * 100

    frame["note"] = ["1"] * 100 + ["call the owner"] * 150  # numbers first, then text
    source = write(frame, tmp_path / "apartments.csv")
    with pytest.raises(DataError, match=r"column 'note' .* int64 values in the first chunk and"):
        predict_file(rent_model, source, tmp_path / "out2.parquet", chunk_size=100)
    assert not any(p.name.startswith(".out2") for p in tmp_path.iterdir())  # no partial file
    assert not (tmp_path / "out2.parquet").exists()
    csv = predict_file(rent_model, source, tmp_path / "out2.csv", chunk_size=100)  # CSV is fine
    assert read(csv.output)["note"].tolist()[99:101] == ["1", "call the owner"]


# ----------------------------------------------------------------------------- classification


def test_classification_adds_probabilities(tmp_path, late_model) -> None:
    tenants = rent_default(300, seed=9).drop(columns=["late_payment"])
    source = write(tenants, tmp_path / "tenants.parquet")
    result = predict_file(late_model, source, tmp_path / "out.parquet", chunk_size=128)
    out = read(result.output)
    assert list(out.columns)[-4:] == ["prediction", "proba_late", "proba_on_time", "request_id"]
    expected = late_model.predict(read_table(source).frame)
    assert out["prediction"].tolist() == expected["prediction"].tolist()
    np.testing.assert_allclose(out["proba_late"] + out["proba_on_time"], 1.0)


# ------------------------------------------------------------------------------ logged batches


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated store: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state' / 'modelcycle.db'}"
        upgrade(url)
        made = make_engine(url)
        yield made
        made.dispose()
        return
    with request.getfixturevalue("pg_schema")() as url:
        upgrade(url)
        made = make_engine(url)
        try:
            yield made
        finally:
            made.dispose()


def test_log_writes_one_record_per_predicted_row(engine, tmp_path, rent_model, rent_rows) -> None:
    source = write(_with_bad_rows(rent_rows), tmp_path / "apartments.csv")
    result = predict_file(rent_model, source, tmp_path / "out.csv", chunk_size=400, engine=engine)
    assert result.logged == result.rows_predicted == ROWS - len(BAD)

    out = read(result.output)
    with engine.connect() as conn:
        logged = window(conn, "rent")
    assert len(logged) == len(out)
    assert sorted(logged["request_id"]) == sorted(out["request_id"])
    assert (logged["row"] == 0).all()
    assert set(logged["arm"]) == {"stable"}
    assert set(logged["model_version"]) == {"1"}
    assert (logged["latency_ms"] > 0).all()
    joined = out.merge(logged, on="request_id", suffixes=("", "_logged"))
    np.testing.assert_allclose(joined["prediction_logged"], joined["prediction"], rtol=1e-12)
    first = logged.set_index("request_id").loc[f"{result.batch_id}-0", "features"]
    assert set(first) == set(rent_model.feature_names)
    assert first["area"] == pytest.approx(float(rent_rows.loc[0, "area"]))
    # each row carries the model's OOD check, as a served row does
    assert rent_model.ood is not None
    checked = logged.set_index("request_id").loc[out["request_id"], "ood"]
    expected = rent_model.ood.score(out[rent_model.feature_names]).records()
    assert [c["flag"] for c in checked] == [e["flag"] for e in expected]

    # delayed labels join the logged predictions by the request ids in the output file
    labels = [
        LabelRecord(request_id=rid, label=float(rent))
        for rid, rent in zip(out["request_id"][:3], out["rent"][:3], strict=True)
    ]
    with engine.begin() as conn:
        assert [r.status for r in insert_labels(conn, labels)] == ["inserted"] * 3
    with engine.connect() as conn:
        assert int(window(conn, "rent", with_features=False)["has_label"].sum()) == 3

    # a chunk written again (a retry) stores nothing twice: the record id is the request id
    rows = read_table(source).frame.head(5)
    typed, _ = InputRules(rent_model.schema).check_frame(rows)
    ids = request_ids(result.batch_id, typed.index.to_numpy())
    assert log_chunk(engine, rent_model, typed, rent_model.predict(typed), ids, 1.0) == len(ids)
    with engine.connect() as conn:
        assert len(window(conn, "rent", with_features=False)) == result.logged

    again = predict_file(rent_model, source, tmp_path / "out.csv", chunk_size=400, engine=engine)
    with engine.connect() as conn:
        assert len(window(conn, "rent", with_features=False)) == 2 * again.logged


def test_log_keeps_class_names_and_probabilities(engine, tmp_path, late_model) -> None:
    tenants = rent_default(200, seed=9).drop(columns=["late_payment"])
    source = write(tenants, tmp_path / "tenants.csv")
    result = predict_file(late_model, source, tmp_path / "out.csv", engine=engine)
    with engine.connect() as conn:
        logged = window(conn, "late")
    assert len(logged) == result.logged == 200
    assert set(logged["prediction"]) <= {"late", "on_time"}
    proba = logged["probabilities"].iloc[0]
    assert set(proba) == {"late", "on_time"}
    assert sum(proba.values()) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------- helpers


def test_request_ids_and_helpers(tmp_path, rent_rows) -> None:
    ids = request_ids("0123456789abcdef", np.array([0, 7, 1_000_000]))
    assert ids.tolist() == ["0123456789abcdef-0", "0123456789abcdef-7", "0123456789abcdef-1000000"]
    assert default_errors_path(Path("out/p.parquet")) == Path("out/p.errors.parquet")
    assert count_rows(write(rent_rows.head(42), tmp_path / "a.parquet")) == 42
    assert count_rows(write(rent_rows.head(42), tmp_path / "a.csv")) is None
    from modelcycle.cli.predict import DEFAULT_CHUNK_SIZE as CLI_DEFAULT

    assert CLI_DEFAULT == DEFAULT_CHUNK_SIZE
