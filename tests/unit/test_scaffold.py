"""init_project: example and data-driven scaffolds, overwrite protection, generated specs parse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelcycle.config.spec import SPEC_FILENAME, load_project, parse_spec
from modelcycle.data.io import read_source, read_table
from modelcycle.data.validation import validate
from modelcycle.errors import ConfigError, DataError, ProjectError
from modelcycle.scaffold import (
    GITIGNORE,
    default_spec,
    env_example,
    init_project,
    rent_spec,
    spec_from_data,
)

SCAFFOLD_FILES = (SPEC_FILENAME, ".env.example", ".gitignore", "README.md")


def orders(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "order_id": [f"A{i:05d}" for i in range(n)],
            "created_at": pd.date_range("2024-01-01", periods=n, freq="h").strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            "amount": rng.uniform(1, 100, n).round(2),
            "channel": rng.choice(["web", "shop", "phone"], n),
            "comment": [f"customer {i} wrote about delivery slot {i * 3}" for i in range(n)],
            "returned": rng.integers(0, 2, n),
        }
    )


def test_init_rent_example(tmp_path: Path) -> None:
    root = tmp_path / "rent"
    scaffold = init_project(root, example="rent", rows=200, seed=3)
    root = root.resolve()
    assert scaffold.root == root
    for name in SCAFFOLD_FILES:
        assert (root / name).is_file(), name
    assert (root / "reports").is_dir()
    assert scaffold.data_path == root / "data" / "rent_apartments.csv"
    assert scaffold.data_path in scaffold.files
    assert {p.name for p in scaffold.files} == {*SCAFFOLD_FILES, "rent_apartments.csv"}

    assert (root / ".env.example").read_text(encoding="utf-8") == env_example()
    gitignore = (root / ".gitignore").read_text(encoding="utf-8")
    assert gitignore == GITIGNORE
    assert ".env\n" in gitignore
    assert "rent" in (root / "README.md").read_text(encoding="utf-8")

    project = load_project(root)
    spec = project.spec
    assert spec.name == "rent"
    assert spec.target == "rent"
    assert spec.task == "regression"
    assert (root / SPEC_FILENAME).read_text(encoding="utf-8") == scaffold.spec_text

    dataset = read_source(spec.data, project.root)
    frame = dataset.frame
    assert len(frame) == 200
    assert spec.target in frame.columns
    assert pd.api.types.is_numeric_dtype(frame[spec.target])
    for name in [*spec.drop, *spec.validation.columns]:
        assert name in frame.columns, f"the spec names {name!r}, which the data lacks"
    report = validate(dataset, spec)
    assert not [f for f in report.findings if f.check in ("missing_column", "rows", "target_type")]


def test_example_data_is_reproducible(tmp_path: Path) -> None:
    first = init_project(tmp_path / "a", example="rent", rows=50, seed=1)
    second = init_project(tmp_path / "b", example="rent", rows=50, seed=1)
    assert first.data_path is not None
    assert second.data_path is not None
    assert first.data_path.read_bytes() == second.data_path.read_bytes()


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / SPEC_FILENAME).write_text("# my own spec\n", encoding="utf-8")
    (root / "README.md").write_text("mine\n", encoding="utf-8")
    with pytest.raises(ProjectError) as info:
        init_project(root)
    err = info.value
    assert type(err) is ProjectError
    assert SPEC_FILENAME in err.message
    assert "README.md" in err.message
    assert ".gitignore" not in err.message  # only files that exist are listed
    assert err.hint is not None
    assert "--force" in err.hint
    # nothing was touched
    assert (root / SPEC_FILENAME).read_text(encoding="utf-8") == "# my own spec\n"
    assert (root / "README.md").read_text(encoding="utf-8") == "mine\n"
    assert not (root / ".gitignore").exists()
    assert not (root / ".env.example").exists()


def test_force_overwrites(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / SPEC_FILENAME).write_text("# my own spec\n", encoding="utf-8")
    scaffold = init_project(root, force=True)
    text = (root / SPEC_FILENAME).read_text(encoding="utf-8")
    assert text == scaffold.spec_text
    assert "my own spec" not in text
    assert parse_spec(text).name == "proj"


def test_refuses_to_overwrite_example_data(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    (root / "data" / "rent_apartments.csv").write_text("precious,data\n1,2\n", encoding="utf-8")
    with pytest.raises(ProjectError) as info:
        init_project(root, example="rent", rows=20)
    assert "rent_apartments.csv" in info.value.message
    assert not (root / SPEC_FILENAME).exists()


def test_blank_project_spec_parses(tmp_path: Path) -> None:
    scaffold = init_project(tmp_path / "My Project!")
    spec = parse_spec(scaffold.spec_text)
    assert spec.name == "My_Project"
    assert spec.target == "CHANGE_ME"
    assert scaffold.data_path is None


def test_init_from_data_infers_roles(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    root.mkdir()
    orders().to_csv(root / "orders.csv", index=False)
    scaffold = init_project(root, data=root / "orders.csv", target="returned")
    spec = load_project(root).spec
    assert spec.target == "returned"
    assert spec.task == "classification"
    assert spec.metric == "roc_auc"
    assert spec.id_column == "order_id"
    assert spec.time_column == "created_at"
    assert spec.drop == ["comment"]
    assert spec.split.method == "stratified"
    assert spec.data.path == Path("orders.csv")  # relative: the project can move
    assert scaffold.data_path is None
    assert read_table(root / "orders.csv").frame.equals(read_source(spec.data, root).frame)


def test_init_from_data_regression_with_time(tmp_path: Path) -> None:
    data = tmp_path / "outside" / "orders.csv"
    data.parent.mkdir()
    orders().to_csv(data, index=False)
    scaffold = init_project(tmp_path / "proj", data=data, target="amount")
    spec = parse_spec(scaffold.spec_text)
    assert spec.task == "regression"
    assert spec.metric == "mae"
    assert spec.split.method == "time"
    assert spec.data.path == data.resolve()


def test_spec_from_data_without_id_or_time() -> None:
    frame = pd.DataFrame({"area": np.arange(40) * 1.5, "rent": np.arange(40) * 10.25})
    spec = parse_spec(spec_from_data(frame, "data/x.csv", "rent", "x"))
    assert spec.id_column is None
    assert spec.time_column is None
    assert spec.drop == []
    assert spec.split.method == "random"


def test_spec_from_data_repeated_id_is_not_an_id() -> None:
    frame = orders()
    frame["order_id"] = [f"A{i % 10}" for i in range(len(frame))]
    spec = parse_spec(spec_from_data(frame, "x.csv", "returned", "x"))
    assert spec.id_column is None


def test_data_without_target_is_a_project_error(tmp_path: Path) -> None:
    data = tmp_path / "orders.csv"
    orders().to_csv(data, index=False)
    with pytest.raises(ProjectError) as info:
        init_project(tmp_path / "proj", data=data)
    assert "--target" in info.value.message
    assert not (tmp_path / "proj").exists()


def test_example_and_data_conflict(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="not both"):
        init_project(tmp_path / "proj", example="rent", data=tmp_path / "x.csv", target="y")


def test_unknown_target_suggests_close_name(tmp_path: Path) -> None:
    data = tmp_path / "orders.csv"
    orders().to_csv(data, index=False)
    with pytest.raises(DataError) as info:
        init_project(tmp_path / "proj", data=data, target="retruned")
    assert info.value.hint is not None
    assert "did you mean 'returned'?" in info.value.hint
    assert not (tmp_path / "proj" / SPEC_FILENAME).exists()


def test_missing_data_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        init_project(tmp_path / "proj", data=tmp_path / "nope.csv", target="y")


def test_column_names_needing_toml_escapes(tmp_path: Path) -> None:
    frame = orders().rename(columns={"returned": 'returned "late"', "comment": "note\\text"})
    data = tmp_path / "orders.csv"
    frame.to_csv(data, index=False)
    try:
        scaffold = init_project(tmp_path / "proj", data=data, target='returned "late"')
    except ConfigError as err:  # the generated spec must be valid TOML
        pytest.fail(f"generated spec is invalid: {err}")
    spec = parse_spec(scaffold.spec_text)
    assert spec.target == 'returned "late"'
    assert spec.drop == ["note\\text"]


@pytest.mark.parametrize("template", [rent_spec, default_spec])
def test_example_specs_parse(template: object) -> None:
    text = template("data/x.csv", "demo")  # type: ignore[operator]
    spec = parse_spec(text)
    assert spec.name == "demo"
    assert spec.data.path == Path("data/x.csv")
    assert spec.metric is not None
    assert spec.resolved_metric(spec.task or "regression") == spec.metric


def test_the_spec_reference_page_is_in_sync_and_names_every_section() -> None:
    from modelcycle.scaffold import spec_reference

    page = Path(__file__).parents[2] / "docs" / "spec.md"
    text = spec_reference()
    assert page.read_text(encoding="utf-8") == text, "regenerate docs/spec.md (spec_reference)"
    for section in (
        "[deployment.gates]",
        "[monitoring.alerts]",
        "[monitoring.drift]",
        "[retraining]",
    ):
        assert f"## `{section}`" in text
    assert '| `cooldown` | `"1h"` |' in text
