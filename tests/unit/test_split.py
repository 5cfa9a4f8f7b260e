"""Unit tests of the train/valid/test split: sizes, disjointness, determinism, methods, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelcycle.config.spec import SplitSpec
from modelcycle.data.split import (
    REPORT_COLUMNS,
    SplitResult,
    min_class_members,
    resolve_method,
    rows_needed,
    split,
    split_report,
    write_split,
)
from modelcycle.errors import DataError

METHODS = ("random", "stratified", "time", "group")


def make_frame(n: int = 1000, seed: int = 0, positive_share: float = 0.06) -> pd.DataFrame:
    """An iid frame: numeric features, a category, a binary target, a time and a repeating id."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "area": rng.normal(70, 20, n),
            "rooms": rng.integers(1, 6, n),
            "city": rng.choice(["a", "b", "c"], n),
            "label": (rng.random(n) < positive_share).astype(int),
            "rent": rng.gamma(5, 200, n),
            "when": pd.date_range("2020-01-01", periods=n, freq="h")[rng.permutation(n)],
            "customer": rng.integers(0, n // 5, n),
        }
    )
    # A shuffled, non-default index: parts must keep it.
    frame.index = pd.Index(rng.permutation(n) + 10_000, name="row")
    return frame


def do_split(frame: pd.DataFrame, method: str, **spec: object) -> SplitResult:
    return split(
        frame,
        SplitSpec(method=method, **spec),  # type: ignore[arg-type]
        target="label",
        task="classification",
        time_column="when",
        id_column="customer",
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("test_size", "valid_size"), [(0.2, 0.2), (0.1, 0.3), (0.25, 0.15)])
def test_sizes_match_ratios(
    frame: pd.DataFrame, method: str, test_size: float, valid_size: float
) -> None:
    result = do_split(frame, method, test_size=test_size, valid_size=valid_size)
    n = len(frame)
    # Groups move whole ids, so a group split may miss the target by up to the largest id.
    slack = 1 if method != "group" else int(frame["customer"].value_counts().max())
    assert abs(len(result.test) - n * test_size) <= slack
    assert abs(len(result.valid) - n * valid_size) <= slack
    assert sum(result.sizes.values()) == n
    assert result.method == method


@pytest.mark.parametrize("method", METHODS)
def test_parts_are_disjoint_cover_all_rows_and_keep_the_index(
    frame: pd.DataFrame, method: str
) -> None:
    result = do_split(frame, method)
    indexes = [part.index for part in result.parts().values()]
    combined = indexes[0].append(indexes[1]).append(indexes[2])
    assert combined.is_unique
    assert set(combined) == set(frame.index)
    for part in result.parts().values():
        # Rows are the source rows, under their source labels.
        pd.testing.assert_frame_equal(part, frame.loc[part.index])


@pytest.mark.parametrize("method", METHODS)
def test_deterministic_with_the_seed_and_different_with_another(
    frame: pd.DataFrame, method: str
) -> None:
    first = do_split(frame, method, seed=7)
    again = do_split(frame, method, seed=7)
    assert first.digests == again.digests
    for name, part in first.parts().items():
        assert part.index.equals(again.parts()[name].index)
    if method != "time":  # a time split has no randomness
        other = do_split(frame, method, seed=8)
        assert not first.test.index.equals(other.test.index)


@pytest.mark.parametrize("method", METHODS)
def test_digests_differ_between_parts_and_are_stable(frame: pd.DataFrame, method: str) -> None:
    result = do_split(frame, method)
    assert set(result.digests) == {"train", "valid", "test"}
    assert len(set(result.digests.values())) == 3
    assert all(len(d) == 64 for d in result.digests.values())
    assert result.digests == do_split(frame.copy(), method).digests


def test_stratified_keeps_class_shares_on_an_imbalanced_target() -> None:
    frame = make_frame(n=5000, seed=3, positive_share=0.06)
    result = do_split(frame, "stratified")
    overall = frame["label"].mean()
    assert 0.04 < overall < 0.08
    for part in result.parts().values():
        assert abs(part["label"].mean() - overall) <= 0.01


def test_stratified_regression_target_uses_quantile_bins() -> None:
    frame = make_frame(n=2000, seed=4)
    result = split(frame, SplitSpec(method="stratified"), target="rent", task="regression")
    medians = [part["rent"].median() for part in result.parts().values()]
    assert max(medians) - min(medians) < 0.05 * frame["rent"].median()


def test_stratified_keeps_rows_with_a_missing_target() -> None:
    frame = make_frame(n=500, seed=5).astype({"label": "float64"})
    frame.iloc[:40, frame.columns.get_loc("label")] = np.nan
    result = do_split(frame, "stratified")
    assert sum(part["label"].isna().sum() for part in result.parts().values()) == 40
    assert sum(result.sizes.values()) == 500


def test_time_split_puts_old_rows_in_train_and_new_rows_in_test(frame: pd.DataFrame) -> None:
    result = do_split(frame, "time")
    assert result.train["when"].max() <= result.valid["when"].min()
    assert result.valid["when"].max() <= result.test["when"].min()
    assert result.train["when"].is_monotonic_increasing


def test_time_split_parses_text_times_including_mixed_formats() -> None:
    frame = make_frame(n=200, seed=6)
    stamps = frame["when"]
    text = stamps.dt.strftime("%Y-%m-%d %H:%M:%S").astype(object)
    text.iloc[::7] = stamps.iloc[::7].dt.strftime("%d %B %Y %H:%M")  # another format
    frame["when"] = text
    result = do_split(frame, "time")
    train_max = stamps.loc[result.train.index].max()
    valid = stamps.loc[result.valid.index]
    assert train_max <= valid.min()
    assert valid.max() <= stamps.loc[result.test.index].min()


def test_group_split_keeps_every_id_in_one_part(frame: pd.DataFrame) -> None:
    result = do_split(frame, "group")
    ids = [set(part["customer"]) for part in result.parts().values()]
    assert not ids[0] & ids[1]
    assert not ids[0] & ids[2]
    assert not ids[1] & ids[2]


@pytest.mark.parametrize(
    ("method", "task", "time_column", "id_column", "expected"),
    [
        ("auto", "classification", None, None, "stratified"),
        ("auto", "classification", "when", None, "stratified"),
        ("auto", "regression", "when", None, "time"),
        ("auto", "regression", None, None, "random"),
        ("auto", "regression", None, "customer", "random"),
        ("auto", None, None, None, "random"),
        ("auto", None, "when", None, "time"),
        ("random", "classification", "when", None, "random"),
        ("group", "regression", None, "customer", "group"),
        ("time", "classification", "when", None, "time"),
        ("stratified", "regression", None, None, "stratified"),
    ],
)
def test_auto_resolution(
    method: str, task: str | None, time_column: str | None, id_column: str | None, expected: str
) -> None:
    spec = SplitSpec(method=method)  # type: ignore[arg-type]
    assert resolve_method(spec, task=task, time_column=time_column, id_column=id_column) == expected


def test_auto_infers_the_task_from_the_target(frame: pd.DataFrame) -> None:
    result = split(frame, SplitSpec(), target="label", task=None)
    assert (result.method, result.task) == ("stratified", "classification")
    result = split(frame, SplitSpec(), target="rent", task=None, time_column="when")
    assert (result.method, result.task) == ("time", "regression")


@pytest.mark.parametrize("n", [0, 1, 5, 9])
def test_too_few_rows_is_a_data_error(n: int) -> None:
    frame = make_frame(n=50).iloc[:n]
    with pytest.raises(DataError, match=rf"has {n} rows.*at least 10"):
        do_split(frame, "random")


def test_tiny_test_size_needs_more_rows() -> None:
    spec = SplitSpec(test_size=0.01)
    assert rows_needed(spec) == 50
    with pytest.raises(DataError, match=r"has 40 rows.*at least 50"):
        split(make_frame(n=40), spec, target="label", task="classification")


def test_rare_class_is_a_data_error_naming_the_class_and_count() -> None:
    frame = make_frame(n=200, seed=1, positive_share=0.0)
    frame.iloc[:3, frame.columns.get_loc("label")] = 1
    with pytest.raises(DataError, match=r"class '1'.*only 3 rows.*at least 5") as caught:
        do_split(frame, "stratified")
    assert caught.value.hint is not None
    assert 'split.method = "random"' in caught.value.hint
    assert min_class_members(SplitSpec()) == 5


@pytest.mark.parametrize(
    ("method", "kwargs", "message"),
    [
        ("group", {"id_column": None}, "needs an id column"),
        ("group", {"id_column": "custmer"}, r"id_column column 'custmer' is not in the data"),
        ("time", {"time_column": None}, "needs a time column"),
        ("time", {"time_column": "wen"}, r"time_column column 'wen' is not in the data"),
    ],
)
def test_missing_columns_are_data_errors(
    frame: pd.DataFrame, method: str, kwargs: dict[str, str | None], message: str
) -> None:
    options: dict[str, str | None] = {"time_column": "when", "id_column": "customer", **kwargs}
    with pytest.raises(DataError, match=message) as caught:
        split(
            frame,
            SplitSpec(method=method),  # type: ignore[arg-type]
            target="label",
            task="classification",
            **options,
        )
    assert caught.value.hint


def test_missing_target_column_suggests_the_close_name(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="target column 'lable'") as caught:
        split(frame, SplitSpec(), target="lable", task=None)
    assert "'label'" in str(caught.value.hint)


def test_unparseable_times_are_a_data_error() -> None:
    frame = make_frame(n=100)
    frame["when"] = frame["when"].astype(str).astype(object)
    frame.iloc[[3, 9], frame.columns.get_loc("when")] = "not a date"
    with pytest.raises(DataError, match=r"'when' has 2 values that are not dates.*'not a date'"):
        do_split(frame, "time")


def test_missing_times_are_a_data_error() -> None:
    frame = make_frame(n=100)
    frame.iloc[[1, 2, 3], frame.columns.get_loc("when")] = pd.NaT
    with pytest.raises(DataError, match="3 missing values"):
        do_split(frame, "time")


def test_too_few_ids_for_a_group_split() -> None:
    frame = make_frame(n=100)
    frame["customer"] = np.where(np.arange(100) < 50, 1, 2)
    with pytest.raises(DataError, match="only 2 distinct ids"):
        do_split(frame, "group")


def test_report_has_a_row_per_part_and_ks_near_zero_for_a_random_split() -> None:
    rng = np.random.default_rng(11)
    n = 20_000
    frame = pd.DataFrame(
        {"x": rng.normal(size=n), "z": rng.exponential(size=n), "label": rng.integers(0, 2, n)}
    )
    result = split(frame, SplitSpec(method="random"), target="label", task="classification")
    report = result.report
    assert list(report.columns) == list(REPORT_COLUMNS)
    for column in ("x", "z", "label"):
        assert list(report.loc[report["column"] == column, "part"]) == ["train", "valid", "test"]
    numeric = report[report["kind"] == "numeric"]
    assert set(numeric["column"]) == {"x", "z"}
    assert (numeric["ks_vs_train"] < 0.03).all()
    assert numeric.loc[numeric["part"] == "train", "n"].tolist() == [len(result.train)] * 2
    shares = report[report["kind"] == "categorical"]
    assert (shares["share_diff"] < 0.02).all()
    assert shares.iloc[0]["shares"].keys() == {"0", "1"}


def test_report_shows_disagreement_for_a_time_split_on_a_trend() -> None:
    n = 2000
    frame = pd.DataFrame(
        {"t": pd.date_range("2021-01-01", periods=n, freq="D"), "y": np.arange(n, dtype=float)}
    )
    result = split(frame, SplitSpec(), target="y", task="regression", time_column="t")
    assert result.method == "time"
    report = result.report.set_index(["column", "part"])
    assert report.loc[("y", "test"), "ks_vs_train"] == 1.0
    assert report.index.get_level_values("column").unique().tolist() == ["y"]  # time left out


def test_report_samples_large_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    import modelcycle.data.split as split_module

    monkeypatch.setattr(split_module, "KS_SAMPLE", 500)
    rng = np.random.default_rng(2)
    parts = {name: pd.DataFrame({"x": rng.normal(size=3000)}) for name in ("train", "valid")}
    report = split_report(parts, target=None, task=None)
    assert report["n"].tolist() == [3000, 3000]
    assert report.loc[1, "ks_vs_train"] < 0.15


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_split(tmp_path: Path, frame: pd.DataFrame, fmt: str) -> None:
    result = do_split(frame, "stratified")
    paths = write_split(result, tmp_path / "split", fmt=fmt)
    assert set(paths) == {"train", "valid", "test", "report"}
    document = json.loads(paths["report"].read_text())
    assert document["method"] == "stratified"
    assert document["sizes"] == result.sizes
    assert document["digests"] == result.digests
    assert len(document["report"]) == len(result.report)
    if fmt == "parquet":
        back = pd.read_parquet(paths["test"])
        pd.testing.assert_frame_equal(back, result.test, check_freq=False)
    else:
        assert len(pd.read_csv(paths["test"])) == len(result.test)


def test_write_split_rejects_an_unknown_format(tmp_path: Path, frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="unknown split file format 'xlsx'"):
        write_split(do_split(frame, "random"), tmp_path, fmt="xlsx")
