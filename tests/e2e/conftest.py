"""Run the CLI as a user does: ``main(argv)`` in a folder, capturing output and exit code.

Also a rent project with two versions registered directly from its data (no ``modelcycle
train``), for the ``models`` and ``deploy`` commands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from loguru import logger

from modelcycle.cli import main
from modelcycle.config.settings import Settings
from modelcycle.config.spec import load_project
from modelcycle.data.io import read_source
from modelcycle.data.schema import schema_for_spec
from modelcycle.data.split import split
from modelcycle.metrics import compute_metrics
from modelcycle.registry.bundle import ModelBundle
from modelcycle.registry.store import register
from modelcycle.scaffold import init_project
from modelcycle.training.train import prepare


@dataclass
class Run:
    """The outcome of one CLI invocation."""

    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """stdout and stderr together."""
        return self.out + self.err


CliRunner = Callable[..., Run]


@pytest.fixture
def cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[CliRunner]:
    """``cli("data", "validate", cwd=path) -> Run``; a fresh CLI state for every call."""
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str, cwd: Path | None = None) -> Run:
        monkeypatch.chdir(cwd or tmp_path)
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    yield run
    logger.remove()


@pytest.fixture(scope="module")
def registered_rent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rent project with rent/1 (linear, champion) and rent/2 (LightGBM, challenger).

    Built once per module that uses it (each module may change its aliases).
    """
    from lightgbm import LGBMRegressor
    from sklearn.linear_model import Ridge

    root = init_project(tmp_path_factory.mktemp("models") / "rent", example="rent", rows=600).root
    settings = Settings.load(root)
    assert settings.mlflow_tracking_uri is not None
    assert settings.artifact_dir is not None
    for estimator, candidate in ((Ridge(), "linear"), (LGBMRegressor(verbose=-1), "lgbm")):
        register(
            _bundle(root, estimator, candidate),
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_dir=settings.artifact_dir,
        )
    return root


def _bundle(project_dir: Path, estimator: Any, candidate: str) -> ModelBundle:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from modelcycle.monitoring.profile import reference_profile

    project = load_project(project_dir)
    spec = project.spec
    dataset = read_source(spec.data, project.root)
    frame = prepare(dataset.frame, spec, notes=[])  # cleaned as `modelcycle train` does
    schema = schema_for_spec(frame, spec, source=dataset.source, data_digest=dataset.digest)
    parts = split(frame, spec.split, target=spec.target, task="regression")
    features = schema.feature_names
    numeric = [c.name for c in schema.features if c.kind == "numeric"]
    categorical = [c for c in features if c not in numeric]
    train, test = parts.train, parts.test
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    pipeline = Pipeline([("pre", pre), ("model", estimator)]).fit(
        train[features], train[spec.target]
    )
    y = test[spec.target].to_numpy()
    metrics = {
        "model": compute_metrics("regression", y, pipeline.predict(test[features])),
        "dummy": compute_metrics("regression", y, np.full(len(y), train[spec.target].median())),
    }
    return ModelBundle(
        name=spec.name,
        pipeline=pipeline,
        schema=schema,
        task="regression",
        metric="mae",
        metrics=metrics,
        baseline="dummy",
        profile=reference_profile(
            train[features],
            schema,
            predictions=pipeline.predict(train[features]),
            target=train[spec.target],
        ).model_dump(mode="json"),
        candidate=candidate,
        params={},
        data_digest=dataset.digest,
        spec_hash=project.spec_hash,
        training_rows=len(train),
        input_example=train[features].head(5),
    )
