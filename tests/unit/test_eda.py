"""The EDA report: sections for every kind of dataset, and numbers that are right."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from modelcycle.data.eda import EdaSummary, explore, render_summary
from modelcycle.data.schema import FeatureSchema

ALWAYS = ("overview", "distributions", "missing-values", "correlations", "outliers")
WITH_TARGET = ("target", "association-with-the-target")


def synthetic(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A small rent-like frame: numeric, integer, categorical, boolean, date and id columns."""
    rng = np.random.default_rng(seed)
    area = rng.gamma(4.0, 20.0, n)
    rooms = rng.integers(1, 6, n)
    frame = pd.DataFrame(
        {
            "listing_id": np.arange(n),
            "area": area,
            "rooms": rooms,
            "age": rng.exponential(30.0, n),
            "city": rng.choice(["Madrid", "Barcelona", "Valencia"], n, p=[0.5, 0.3, 0.2]),
            "elevator": rng.random(n) < 0.6,
            "listed": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D"),
            "rent": 300 + 9 * area + 60 * rooms + rng.normal(0, 120, n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "age"] = np.nan
    return frame


def run(frame: pd.DataFrame, tmp_path: Path, **infer: object) -> tuple[EdaSummary, str]:
    schema = FeatureSchema.infer(frame, **infer)  # type: ignore[arg-type]
    summary = explore(frame, schema, out=tmp_path / "eda.html")
    return summary, summary.path.read_text(encoding="utf-8")


def section_ids(html: str) -> set[str]:
    return set(re.findall(r'<section id="([^"]+)"', html))


def assert_sections(html: str, *, target: bool) -> None:
    ids = section_ids(html)
    for name in ALWAYS:
        assert name in ids, name
    assert any(i.startswith("duplicates") for i in ids)
    for name in WITH_TARGET:
        assert (name in ids) is target, name


def test_regression_report(tmp_path: Path) -> None:
    frame = synthetic()
    summary, html = run(frame, tmp_path, target="rent", id_column="listing_id")
    assert summary.path == tmp_path / "eda.html"
    assert_sections(html, target=True)
    assert summary.task == "regression"
    assert set(summary.target_stats) >= {"mean", "std", "median", "skew"}
    assert summary.target_stats["mean"] == pytest.approx(frame["rent"].mean())
    assert summary.associations[0].feature == "area"
    assert summary.associations[0].method == "spearman"
    assert summary.associations[0].value > 0.8
    assert summary.n_figures == html.count('class="plotly-graph-div"') > 5
    assert "Spearman" in html
    assert "Not charted: listing_id (role id)" in html
    assert summary.sampled_rows == len(frame)
    assert "random sample" not in html


@pytest.mark.parametrize("labels", ["binary", "strings"])
def test_classification_report(tmp_path: Path, labels: str) -> None:
    frame = synthetic(500)
    expensive = frame["rent"] > frame["rent"].quantile(0.9)
    frame["rent"] = (
        expensive.astype(int) if labels == "binary" else np.where(expensive, "expensive", "normal")
    )
    summary, html = run(frame, tmp_path, target="rent")
    assert_sections(html, target=True)
    assert summary.task == "classification"
    minority = "1" if labels == "binary" else "expensive"
    assert summary.minority_class == minority
    assert summary.class_counts[minority] == int(expensive.sum())
    assert summary.minority_share == pytest.approx(expensive.mean())
    assert summary.imbalance_ratio == pytest.approx((~expensive).sum() / expensive.sum())
    assert "Imbalanced classes." in html
    assert "Class balance of rent" in html
    assert {a.method for a in summary.associations} <= {"correlation ratio", "cramers v"}
    assert summary.associations[0].feature == "area"
    assert any("Imbalanced target" in w for w in summary.warnings)


def test_balanced_classes_have_no_imbalance_callout(tmp_path: Path) -> None:
    frame = synthetic(300)
    frame["rent"] = np.where(frame["rent"] > frame["rent"].median(), "high", "low")
    summary, html = run(frame, tmp_path, target="rent")
    assert summary.minority_share is not None
    assert summary.minority_share > 0.45
    assert "Imbalanced classes." not in html


def test_no_target(tmp_path: Path) -> None:
    summary, html = run(synthetic(200).drop(columns="rent"), tmp_path)
    assert_sections(html, target=False)
    assert summary.target is None
    assert summary.associations == []
    assert summary.class_counts == {}
    assert summary.n_figures > 3


def test_all_null_columns(tmp_path: Path) -> None:
    frame = synthetic(100)
    frame["nothing"] = np.nan
    frame["nobody"] = pd.Series([None] * len(frame), dtype=object)
    summary, html = run(frame, tmp_path, target="rent")
    assert_sections(html, target=True)
    assert "nothing (all values missing)" in html
    assert "nobody (all values missing)" in html
    assert any("'nothing' is entirely missing" in w for w in summary.warnings)
    assert summary.missing_cells == int(frame.isna().sum().sum())


def test_all_null_target(tmp_path: Path) -> None:
    frame = synthetic(50)
    frame["rent"] = np.nan
    schema = FeatureSchema.infer(frame, target="rent", task="regression")
    summary = explore(frame, schema, out=tmp_path / "eda.html")
    html = summary.path.read_text(encoding="utf-8")
    assert "entirely missing" in html
    assert summary.target_missing == 50


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_frames(tmp_path: Path, n: int) -> None:
    frame = synthetic(10).head(n).reset_index(drop=True)
    summary, html = run(frame, tmp_path, target="rent", task="regression")
    assert summary.n_rows == n
    assert "Overview" in html
    assert "No correlation matrix" in html
    assert summary.duplicate_rows == 0


def test_summary_numbers_on_a_hand_made_frame(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "a": [1.0, 1.0, 2.0, np.nan, 5.0, 1.0],
            "b": ["x", "x", "y", None, "z", "x"],
            "label": ["yes", "yes", "no", "no", "no", "yes"],
        }
    )
    # rows 1 and 5 repeat row 0: two duplicates; 2 missing cells of 18
    summary, html = run(frame, tmp_path, target="label")
    assert summary.n_rows == 6
    assert summary.n_columns == 3
    assert summary.duplicate_rows == 2
    assert summary.missing_cells == 2
    assert summary.missing_share == pytest.approx(2 / 18)
    assert summary.rows_with_missing == 1
    assert summary.class_counts == {"yes": 3, "no": 3}
    assert summary.imbalance_ratio == pytest.approx(1.0)
    assert summary.minority_share == pytest.approx(0.5)
    assert "11.1%" in html  # missing share card
    assert any("2 duplicate rows" in w for w in summary.warnings)


def test_imbalance_ratio_on_a_hand_made_frame(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(10.0), "y": [0] * 9 + [1]})
    summary, html = run(frame, tmp_path, target="y")
    assert summary.class_counts == {"0": 9, "1": 1}
    assert summary.minority_class == "1"
    assert summary.minority_share == pytest.approx(0.1)
    assert summary.imbalance_ratio == pytest.approx(9.0)
    assert "9.0 : 1" in html
    assert "severely" not in html
    assert "imbalanced" in html


def test_outliers_duplicate_ids_and_conflicting_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "id": [*range(98), 0, 1],
            "x": np.r_[rng.normal(0, 1, 97), 1000.0, -1000.0, 0.5],
            "c": ["a"] * 100,
            "y": rng.normal(0, 1, 100),
        }
    )
    frame.loc[99, ["x", "c"]] = frame.loc[98, ["x", "c"]].to_numpy()
    frame.loc[99, "x"] = 5.0
    frame.loc[98, "x"] = 5.0
    summary, html = run(frame, tmp_path, target="y", id_column="id")
    assert summary.outliers["x"] >= 3  # 1000, -1000 and the two 5.0s
    assert "duplicate ids" in html
    assert "conflicting labels" in html
    assert any("repeated values" in w for w in summary.warnings)


def test_sampling_is_announced_and_counts_use_every_row(tmp_path: Path) -> None:
    frame = synthetic(600)
    frame = pd.concat([frame, frame.head(25)], ignore_index=True)
    schema = FeatureSchema.infer(frame, target="rent")
    summary = explore(frame, schema, out=tmp_path / "eda.html", max_rows=200, seed=3)
    html = summary.path.read_text(encoding="utf-8")
    assert summary.sampled_rows == 200
    assert summary.duplicate_rows == 25
    assert "random sample of 200 of the 625 rows" in html


def test_schema_and_frame_disagree(tmp_path: Path) -> None:
    frame = synthetic(80)
    schema = FeatureSchema.infer(frame.drop(columns="age"), target="rent")
    summary = explore(frame.drop(columns="city"), schema, out=tmp_path)
    html = summary.path.read_text(encoding="utf-8")
    assert summary.path == tmp_path / "eda.html"
    assert "missing column" in html  # city: in the schema, not in the data
    assert "unknown column" in html  # age: in the data, not in the schema
    assert any("city" in w for w in summary.warnings)


def test_escapes_user_strings(tmp_path: Path) -> None:
    frame = pd.DataFrame({"<b>col</b>": ["<script>x</script>", "b", "a"] * 5, "v": np.arange(15.0)})
    _, html = run(frame, tmp_path)
    assert "<script>x</script>" not in html
    assert "<b>col</b>" not in html


def test_render_summary(tmp_path: Path) -> None:
    frame = synthetic(200)
    frame["rent"] = np.where(frame["rent"] > frame["rent"].quantile(0.85), "high", "low")
    summary, _ = run(frame, tmp_path, target="rent")
    console = Console(record=True, width=120)
    render_summary(summary, console)
    text = console.export_text()
    assert "200 × 8" in text
    assert "minority class" in text
    assert "high" in text
    assert "eda.html" in text


def test_render_summary_prints_names_literally(tmp_path: Path) -> None:
    frame = pd.DataFrame({"[bold]x[/bold]": [1.0, 2.0, 3.0, 4.0], "y": [1.0, 2.0, 3.0, 5.0]})
    frame["[red]all gone"] = np.nan
    summary, _ = run(frame, tmp_path, target="y")
    console = Console(record=True, width=160)
    render_summary(summary, console)
    text = console.export_text()
    assert "'[red]all gone' is entirely missing" in text
    assert "[bold]x[/bold]" in text
