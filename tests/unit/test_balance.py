"""Unit tests of class balance, class weights and resampling (applied to training data only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelcycle.config.spec import ImbalanceSpec
from modelcycle.data.balance import (
    IMBALANCE_SHARE,
    SamplingRatio,
    class_balance,
    class_weights,
    make_sampler,
    resample_training,
    sample_weights,
)
from modelcycle.errors import DataError

RESAMPLERS = ("random_over", "random_under", "smote")


def make_data(
    n: int = 600, positive_share: float = 0.1, seed: int = 0
) -> tuple[pd.DataFrame, pd.Series]:
    """Numeric features and a binary text target with roughly ``positive_share`` positives."""
    rng = np.random.default_rng(seed)
    y = pd.Series(np.where(rng.random(n) < positive_share, "yes", "no"), name="churn")
    x = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n) + (y == "yes") * 5,
            "visits": rng.integers(0, 20, n).astype(float),
        }
    )
    index = pd.Index(rng.permutation(n) + 1000, name="row")
    x.index, y.index = index, index
    return x, y


def split_three(x: pd.DataFrame, y: pd.Series) -> tuple[tuple[pd.DataFrame, pd.Series], ...]:
    """Train / valid / test thirds."""
    cut = np.array_split(np.arange(len(x)), 3)
    return tuple((x.iloc[c], y.iloc[c]) for c in cut)


def ratio(y: pd.Series) -> float:
    counts = y.value_counts()
    return float(counts.min() / counts.max())


def test_class_balance_counts_and_ratio() -> None:
    y = pd.Series(["a"] * 70 + ["b"] * 20 + ["c"] * 10 + [None] * 5, name="t")
    balance = class_balance(y)
    assert balance.counts == {"a": 70, "b": 20, "c": 10}
    assert list(balance.counts) == ["a", "b", "c"]  # most frequent first
    assert balance.shares == pytest.approx({"a": 0.7, "b": 0.2, "c": 0.1})
    assert (balance.majority, balance.minority) == ("a", "c")
    assert balance.ratio == pytest.approx(10 / 70)
    assert balance.n_classes == 3


def test_class_balance_labels_are_text() -> None:
    balance = class_balance(pd.Series([0, 0, 0, 1]))
    assert balance.counts == {"0": 3, "1": 1}
    assert balance.minority == "1"


@pytest.mark.parametrize(
    ("counts", "imbalanced"),
    [
        ({"no": 94, "yes": 6}, True),
        ({"no": 81, "yes": 19}, True),
        ({"no": 80, "yes": 20}, False),
        ({"no": 50, "yes": 50}, False),
        ({str(i): 10 for i in range(10)}, False),  # ten equal classes are balanced
        ({"a": 60, "b": 35, "c": 5}, True),
        ({"a": 40, "b": 35, "c": 25}, False),
    ],
)
def test_imbalanced_flag(counts: dict[str, int], imbalanced: bool) -> None:
    y = pd.Series([label for label, n in counts.items() for _ in range(n)])
    assert class_balance(y).imbalanced is imbalanced
    assert IMBALANCE_SHARE == 0.2


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["x"] * 10, r"single class 'x' \(10 rows\)"),
        ([None, None], "has no values"),
        ([], "has no values"),
    ],
)
def test_class_balance_rejects_a_single_class_or_empty_target(
    values: list[str | None], message: str
) -> None:
    with pytest.raises(DataError, match=message) as caught:
        class_balance(pd.Series(values, dtype=object, name="target"))
    assert caught.value.hint


@pytest.mark.parametrize("strategy", ["none", "class_weight"])
def test_no_sampler_for_none_and_class_weight(strategy: str) -> None:
    spec = ImbalanceSpec(strategy=strategy)  # type: ignore[arg-type]
    assert make_sampler(spec, seed=0) is None
    x, y = make_data()
    x_out, y_out = resample_training(x, y, spec, seed=0)
    assert x_out is x
    assert y_out is y


@pytest.mark.parametrize(
    ("strategy", "class_name"),
    [
        ("random_over", "RandomOverSampler"),
        ("random_under", "RandomUnderSampler"),
        ("smote", "SMOTE"),
    ],
)
def test_make_sampler_builds_the_imblearn_sampler(strategy: str, class_name: str) -> None:
    spec = ImbalanceSpec(strategy=strategy, sampling_ratio=0.5)  # type: ignore[arg-type]
    sampler = make_sampler(spec, seed=3)
    assert type(sampler).__name__ == class_name
    params = sampler.get_params()  # type: ignore[attr-defined]
    assert params["random_state"] == 3
    assert params["sampling_strategy"].ratio == 0.5


@pytest.mark.parametrize("strategy", RESAMPLERS)
def test_resampling_changes_only_the_training_data_passed_in(strategy: str) -> None:
    x, y = make_data(n=900)
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = split_three(x, y)
    originals = [frame.copy() for frame in (x_train, y_train, x_valid, y_valid, x_test, y_test)]
    spec = ImbalanceSpec(strategy=strategy)  # type: ignore[arg-type]
    x_res, y_res = resample_training(x_train, y_train, spec, seed=0)
    # Only the training data is rebalanced...
    assert ratio(y_train) < 0.2
    assert ratio(y_res) == pytest.approx(1.0)
    assert len(x_res) == len(y_res) != len(x_train)
    # ...the inputs themselves are not modified, and validation and test are untouched.
    after = [x_train, y_train, x_valid, y_valid, x_test, y_test]
    for before, now in zip(originals, after, strict=True):
        if isinstance(before, pd.DataFrame):
            pd.testing.assert_frame_equal(now, before)
        else:
            pd.testing.assert_series_equal(now, before)
    assert ratio(y_valid) < 0.2
    assert ratio(y_test) < 0.2


@pytest.mark.parametrize("sampling_ratio", [1.0, 0.5, 0.3])
def test_random_over_reaches_the_sampling_ratio(sampling_ratio: float) -> None:
    x, y = make_data()
    before = y.value_counts()
    spec = ImbalanceSpec(strategy="random_over", sampling_ratio=sampling_ratio)
    x_res, y_res = resample_training(x, y, spec, seed=0)
    after = y_res.value_counts()
    assert after["no"] == before["no"]  # the majority is kept
    assert after["yes"] == int(sampling_ratio * before["no"])
    # Over-sampling repeats real rows under their own labels.
    assert set(x_res.index) == set(x.index)
    pd.testing.assert_frame_equal(x_res.loc[~x_res.index.duplicated()], x, check_like=True)
    assert (y_res.index == x_res.index).all()


@pytest.mark.parametrize("sampling_ratio", [1.0, 0.5])
def test_random_under_reaches_the_sampling_ratio(sampling_ratio: float) -> None:
    x, y = make_data()
    before = y.value_counts()
    spec = ImbalanceSpec(strategy="random_under", sampling_ratio=sampling_ratio)
    x_res, y_res = resample_training(x, y, spec, seed=0)
    after = y_res.value_counts()
    assert after["yes"] == before["yes"]  # the minority is kept
    assert after["no"] == int(before["yes"] / sampling_ratio)
    assert x_res.index.is_unique
    assert set(x_res.index) <= set(x.index)
    pd.testing.assert_frame_equal(x_res, x.loc[x_res.index])


def test_sampling_ratio_already_met_leaves_the_data_alone() -> None:
    x, y = make_data(positive_share=0.45)
    x_res, y_res = resample_training(
        x, y, ImbalanceSpec(strategy="random_over", sampling_ratio=0.5), seed=0
    )
    assert len(x_res) == len(x)
    assert y_res.value_counts().to_dict() == y.value_counts().to_dict()


def test_sampling_ratio_handles_multiclass() -> None:
    y = np.array([0] * 70 + [1] * 20 + [2] * 10)
    assert SamplingRatio(0.5, "over")(y) == {1: 35, 2: 35}
    assert SamplingRatio(0.5, "under")(y) == {0: 20}
    x = pd.DataFrame({"x": np.arange(100.0)})
    _, y_res = resample_training(
        x, pd.Series(y), ImbalanceSpec(strategy="random_over", sampling_ratio=0.5), seed=0
    )
    assert y_res.value_counts().to_dict() == {0: 70, 1: 35, 2: 35}


def test_smote_creates_synthetic_rows_on_numeric_data() -> None:
    x, y = make_data()
    x_res, y_res = resample_training(x, y, ImbalanceSpec(strategy="smote"), seed=0)
    n_new = len(x_res) - len(x)
    assert n_new == (y == "no").sum() - (y == "yes").sum()
    # The original rows come first; the new ones are interpolations, not copies.
    np.testing.assert_allclose(x_res.iloc[: len(x)].to_numpy(), x.to_numpy())
    synthetic = x_res.iloc[len(x) :]
    assert (y_res.iloc[len(x) :] == "yes").all()
    assert not synthetic.merge(x, how="inner").shape[0]
    minority = x[y == "yes"]
    assert synthetic["age"].between(minority["age"].min(), minority["age"].max()).all()
    assert y_res.name == "churn"


def test_smote_is_deterministic_with_the_seed() -> None:
    x, y = make_data()
    spec = ImbalanceSpec(strategy="smote")
    first, _ = resample_training(x, y, spec, seed=5)
    again, _ = resample_training(x, y, spec, seed=5)
    other, _ = resample_training(x, y, spec, seed=6)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


def test_smote_on_a_text_column_is_a_data_error() -> None:
    x, y = make_data()
    x["city"] = np.where(np.arange(len(x)) % 2, "Madrid", "Lima")
    with pytest.raises(DataError, match=r"SMOTE needs numeric features.*'city'") as caught:
        resample_training(x, y, ImbalanceSpec(strategy="smote"), seed=0)
    assert "random_over" in str(caught.value.hint)
    assert "pipeline" in str(caught.value.hint)


def test_smote_on_missing_values_or_tiny_class_is_a_data_error() -> None:
    x, y = make_data()
    x.iloc[0, 0] = np.nan
    with pytest.raises(DataError, match="missing values"):
        resample_training(x, y, ImbalanceSpec(strategy="smote"), seed=0)
    x, y = make_data(n=40, positive_share=0.0)
    y.iloc[:3] = "yes"
    with pytest.raises(DataError, match=r"at least 6 rows of each class.*'yes' has 3"):
        resample_training(x, y, ImbalanceSpec(strategy="smote"), seed=0)


def test_resampling_rejects_a_missing_target_or_a_single_class() -> None:
    x, y = make_data()
    spec = ImbalanceSpec(strategy="random_over")
    with pytest.raises(DataError, match="missing on 1 training rows"):
        resample_training(x, y.mask(y.index == y.index[0]), spec, seed=0)
    with pytest.raises(DataError, match="single class"):
        resample_training(x, pd.Series("no", index=y.index, name="churn"), spec, seed=0)


def test_class_weights_are_balanced() -> None:
    y = pd.Series([0] * 80 + [1] * 20)
    weights = class_weights(y)
    assert weights == pytest.approx({0: 100 / (2 * 80), 1: 100 / (2 * 20)})
    from sklearn.utils.class_weight import compute_class_weight

    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=y.to_numpy())
    assert [weights[0], weights[1]] == pytest.approx(list(expected))


@pytest.mark.parametrize(
    "counts", [{"a": 80, "b": 20}, {"a": 94, "b": 6}, {"a": 50, "b": 30, "c": 15, "d": 5}]
)
def test_sample_weights_average_to_one_and_balance_the_classes(counts: dict[str, int]) -> None:
    y = pd.Series([label for label, n in counts.items() for _ in range(n)])
    weights = sample_weights(y)
    assert weights.shape == (len(y),)
    assert weights.mean() == pytest.approx(1.0)
    # Every class carries the same total weight: n_rows / n_classes.
    totals = pd.Series(weights).groupby(y.to_numpy()).sum()
    assert totals.to_numpy() == pytest.approx(np.full(len(counts), len(y) / len(counts)))


def test_sample_weights_give_rows_without_a_target_weight_one() -> None:
    y = pd.Series([1.0, 1.0, 1.0, 0.0, np.nan])
    weights = sample_weights(y)
    assert weights[-1] == 1.0
    assert weights[:4].mean() == pytest.approx(1.0)
