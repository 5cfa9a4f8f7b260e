"""``modelcycle predict``: batch predictions from a file, as a user runs them in a rent project.

The project is the rent example (its messy data included); one LightGBM version is registered
directly from the project's data, so these tests do not depend on ``modelcycle train``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from modelcycle.config.settings import Settings
from modelcycle.config.spec import load_project
from modelcycle.data.io import read_source
from modelcycle.data.schema import schema_for_spec
from modelcycle.metrics import compute_metrics
from modelcycle.registry.bundle import ModelBundle
from modelcycle.registry.store import register
from modelcycle.scaffold import init_project
from modelcycle.store import make_engine, window
from modelcycle.training.train import prepare

ROWS = 600


def _bundle(root: Path) -> ModelBundle:
    from lightgbm import LGBMRegressor
    from sklearn.pipeline import Pipeline

    from modelcycle.training.features import build_preprocessor

    project = load_project(root)
    spec = project.spec
    dataset = read_source(spec.data, project.root)
    frame = prepare(dataset.frame, spec, notes=[])  # cleaned as `modelcycle train` does
    schema = schema_for_spec(frame, spec, source=dataset.source, data_digest=dataset.digest)
    features = schema.input_names
    pipeline = Pipeline(
        [
            ("preprocess", build_preprocessor(schema, scale=False, task="regression")),
            ("model", LGBMRegressor(n_estimators=30, verbose=-1)),
        ]
    ).fit(frame[features], frame[spec.target])
    y = frame[spec.target].to_numpy()
    return ModelBundle(
        name=spec.name,
        pipeline=pipeline,
        schema=schema,
        task="regression",
        metric="mae",
        metrics={"model": compute_metrics("regression", y, pipeline.predict(frame[features]))},
        baseline="model",
        profile={},
        candidate="lgbm",
        params={},
        data_digest=dataset.digest,
        spec_hash=project.spec_hash,
        training_rows=len(frame),
        input_example=frame[features].head(5),
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rent project with rent/1 registered (champion)."""
    root = init_project(tmp_path_factory.mktemp("predict") / "rent", example="rent", rows=ROWS).root
    settings = Settings.load(root)
    assert settings.mlflow_tracking_uri is not None
    assert settings.artifact_dir is not None
    register(
        _bundle(root), tracking_uri=settings.mlflow_tracking_uri, artifact_dir=settings.artifact_dir
    )
    return root


def test_predict_a_csv_file(cli, project: Path) -> None:
    run = cli("predict", "data/rent_apartments.csv", "--out", "out/predictions.csv", cwd=project)
    assert run.code == 0, run.text
    text = " ".join(run.out.split())
    assert f"of {ROWS:,} rows with rent/1" in text  # the default model is <project>@champion
    assert "rows/s" in text
    assert "out/predictions.csv (request ids" in text

    out = pd.read_csv(project / "out" / "predictions.csv")
    assert {"prediction", "request_id", "area", "address"} <= set(out.columns)
    assert f"Predicted {len(out):,} of" in text
    assert out["request_id"].is_unique
    errors = project / "out" / "predictions.errors.csv"
    if len(out) < ROWS:  # the example's planted problems (e.g. "None" areas) fail validation
        failed = pd.read_csv(errors)
        assert len(failed) + len(out) == ROWS
        assert f"{len(failed):,} row" in text
        assert "predictions.errors.csv" in text
        assert failed["reason"].notna().all()
        assert not set(failed["row"]) & {int(r.rsplit("-", 1)[1]) for r in out["request_id"]}
    else:
        assert "failed: none" in text
        assert not errors.exists()


def test_predict_parquet_with_a_model_reference_and_log(cli, project: Path, tmp_path) -> None:
    frame = pd.read_csv(project / "data" / "rent_apartments.csv").head(250)
    frame = frame[pd.to_numeric(frame["area"], errors="coerce").notna()]
    frame["area"] = frame["area"].astype(float)
    source = tmp_path / "apartments.parquet"
    frame.to_parquet(source)
    out = tmp_path / "predictions.parquet"
    run = cli(
        "predict", str(source), "--out", str(out), "--model", "rent/1", "--log",
        "--chunk-size", "100", "--errors", str(tmp_path / "bad.csv"), cwd=project,
    )  # fmt: skip
    assert run.code == 0, run.text
    predicted = pd.read_parquet(out)
    text = " ".join(run.out.split())
    assert f"logged: {len(predicted):,} predictions to sqlite:///" in text
    assert "rows/s" in text

    engine = make_engine(f"sqlite:///{project / '.modelcycle' / 'modelcycle.db'}")
    try:
        with engine.connect() as conn:
            logged = window(conn, "rent", with_features=False)
    finally:
        engine.dispose()
    assert set(predicted["request_id"]) <= set(logged["request_id"])


def test_a_missing_input_file_is_one_clear_line(cli, project: Path) -> None:
    run = cli("predict", "nope.csv", "--out", "out.csv", cwd=project)
    assert run.code == 2
    assert run.err.count("error:") == 1
    assert "nope.csv does not exist" in run.err
    assert "Traceback" not in run.text
    assert not (project / "out.csv").exists()


def test_errors_name_the_fix(cli, project: Path, tmp_path: Path) -> None:
    run = cli("predict", "data/rent_apartments.csv", "--out", "o.csv", "--model", "nothing@x",
              cwd=project)  # fmt: skip
    assert run.code == 2
    assert "nothing" in run.err
    assert "Traceback" not in run.text

    run = cli("predict", "data/rent_apartments.csv", "--out", "o.json", cwd=project)
    assert run.code == 2
    assert "unknown format" in run.err

    (tmp_path / "bad.csv").write_text((project / "data" / "rent_apartments.csv").read_text()
                                      .splitlines()[0] + "\n" + "x," * 16 + "x\n")  # fmt: skip
    run = cli("predict", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o.csv"), cwd=project)
    assert run.code == 2
    assert "none of the 1 row could be predicted" in run.err
    assert "bad.errors.csv" not in run.err
    assert "o.errors.csv" in run.err
    assert (tmp_path / "o.errors.csv").exists()

    (tmp_path / "rows.csv").write_text("area\n50\n")
    run = cli("predict", "rows.csv", "--out", "o.csv", cwd=tmp_path)  # not in a project
    assert run.code == 2
    assert "no --model given" in run.err
    assert "--model NAME@ALIAS" in " ".join(run.err.split())


def test_help_describes_every_option(cli) -> None:
    run = cli("predict", "--help")
    assert run.code == 0, run.text
    for option in ("--out", "--model", "--log", "--chunk-size", "--errors"):
        assert option in run.out
    assert "champion" in run.out
