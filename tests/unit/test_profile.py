"""Reference and current profiles: bins, counts, categories, nulls, JSON, merge and scale."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelcycle.data.schema import FeatureSchema
from modelcycle.errors import DataError
from modelcycle.monitoring.profile import (
    QUANTILES,
    TOP_K,
    CategoricalProfile,
    NumericProfile,
    Profile,
    current_profile,
    merge,
    reference_profile,
)

N = 2_000


def rent_frame(n: int = N, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    area = rng.gamma(4.0, 20.0, n) + shift
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "area": area,
            "rooms": rng.integers(1, 6, n),
            "age": rng.exponential(30.0, n),
            "city": rng.choice(
                ["Madrid", "Barcelona", "Valencia", "Sevilla"], n, p=[0.4, 0.3, 0.2, 0.1]
            ),
            "elevator": rng.random(n) < 0.6,
            "address": [f"street {i}" for i in range(n)],
            "listed": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D"),
            "rent": 300 + 9 * area + rng.normal(0, 120, n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "age"] = np.nan
    frame.loc[rng.random(n) < 0.05, "city"] = None
    return frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return rent_frame()


@pytest.fixture(scope="module")
def schema(frame: pd.DataFrame) -> FeatureSchema:
    return FeatureSchema.infer(frame, target="rent", id_column="id", time_column="listed")


@pytest.fixture(scope="module")
def reference(frame: pd.DataFrame, schema: FeatureSchema) -> Profile:
    return reference_profile(frame, schema, predictions=frame["rent"] * 0.9, target=frame["rent"])


def numeric(profile: Profile, name: str) -> NumericProfile:
    col = profile.columns[name]
    assert isinstance(col, NumericProfile)
    return col


def categorical(profile: Profile, name: str) -> CategoricalProfile:
    col = profile.columns[name]
    assert isinstance(col, CategoricalProfile)
    return col


def test_columns_follow_the_schema(reference: Profile) -> None:
    # id, time, target and free text (address) are not features; the rest are profiled by kind
    assert list(reference.columns) == ["area", "rooms", "age", "city", "elevator"]
    assert {n for n, c in reference.columns.items() if c.kind == "numeric"} == {
        "area",
        "rooms",
        "age",
    }
    assert categorical(reference, "elevator").boolean
    assert reference.n_rows == N
    assert isinstance(reference.prediction, NumericProfile)
    assert isinstance(reference.target, NumericProfile)
    assert reference.missing_columns == []


def test_edges_are_increasing_deciles(reference: Profile, frame: pd.DataFrame) -> None:
    area = numeric(reference, "area")
    assert len(area.edges) == 9
    assert np.all(np.diff(area.edges) > 0)
    assert np.allclose(area.edges, np.quantile(frame["area"], np.arange(1, 10) / 10))
    assert len(area.counts) == len(area.edges) + 1
    # each decile bin holds about a tenth of the rows; the open ends too
    assert all(abs(c - N / 10) <= 1 for c in area.counts)
    assert len(area.fine_edges) == 99
    assert np.all(np.diff(area.fine_edges) > 0)
    # discrete values: duplicate quantiles collapse to one edge per value
    rooms = numeric(reference, "rooms")
    assert rooms.edges == sorted(set(rooms.edges))
    assert set(rooms.edges) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert rooms.counts[0] == int((frame["rooms"] <= rooms.edges[0]).sum())


def test_counts_sum_to_non_null_count(reference: Profile, frame: pd.DataFrame) -> None:
    for name, col in reference.columns.items():
        if isinstance(col, NumericProfile):
            assert sum(col.counts) == sum(col.fine_counts) == col.count
        else:
            assert sum(col.frequencies.values()) + col.other_count == col.count
        assert col.count + col.null_count == N
        assert col.null_count == frame[name].isna().sum()
    age = numeric(reference, "age")
    assert age.null_count == frame["age"].isna().sum() > 0
    assert age.null_rate == pytest.approx(frame["age"].isna().mean())


def test_statistics_match_numpy(reference: Profile, frame: pd.DataFrame) -> None:
    age = numeric(reference, "age")
    values = frame["age"].dropna().to_numpy()
    assert age.mean == pytest.approx(values.mean())
    assert age.std == pytest.approx(values.std())
    assert (age.min, age.max) == (values.min(), values.max())
    assert list(age.quantiles) == [f"{q:g}" for q in QUANTILES]
    assert np.allclose(list(age.quantiles.values()), np.quantile(values, QUANTILES), rtol=1e-12)


def test_current_on_the_same_data_reproduces_the_reference(
    reference: Profile, frame: pd.DataFrame
) -> None:
    current = current_profile(
        frame, reference, predictions=frame["rent"] * 0.9, target=frame["rent"]
    )
    assert current.model_dump(exclude={"created_at"}) == reference.model_dump(
        exclude={"created_at"}
    )


def test_shifted_data_moves_mass_to_upper_bins(reference: Profile) -> None:
    shifted = current_profile(rent_frame(seed=1, shift=40.0), reference)
    same = current_profile(rent_frame(seed=1), reference)
    ref_area, new_area, same_area = (numeric(p, "area") for p in (reference, shifted, same))
    assert new_area.edges == ref_area.edges
    upper = slice(len(ref_area.counts) // 2, None)
    assert sum(new_area.counts[upper]) > 0.8 * new_area.count
    assert sum(same_area.counts[upper]) == pytest.approx(0.5 * same_area.count, rel=0.1)
    assert new_area.counts[-1] > 3 * ref_area.counts[-1]
    assert new_area.quantiles["0.5"] > ref_area.quantiles["0.5"] + 30


def test_unseen_categories_are_counted(reference: Profile) -> None:
    live = rent_frame(n=500, seed=2)
    live.loc[:99, "city"] = "Bilbao"
    live.loc[100:109, "city"] = "Zaragoza"
    live["elevator"] = live["elevator"].astype(object)
    live.loc[110:119, "elevator"] = "yes"  # text booleans from a JSON payload
    current = current_profile(live, reference)
    city = categorical(current, "city")
    assert list(city.frequencies) == list(categorical(reference, "city").frequencies)
    assert city.new_categories == {"Bilbao": 100, "Zaragoza": 10}
    assert city.other_count == 110
    assert sum(city.frequencies.values()) + city.other_count == city.count
    assert city.count + city.null_count == 500
    elevator = categorical(current, "elevator")
    assert set(elevator.frequencies) == {"True", "False"}
    assert elevator.new_categories == {}
    assert sum(elevator.frequencies.values()) == 500


def test_categories_beyond_top_k_go_to_other() -> None:
    n_levels = TOP_K + 30
    values = [f"c{i:03d}" for i in range(n_levels) for _ in range(n_levels - i)]
    frame = pd.DataFrame({"code": values, "x": np.arange(len(values), dtype=float)})
    schema = FeatureSchema.infer(frame)
    ref = reference_profile(frame, schema)
    code = categorical(ref, "code")
    assert len(code.frequencies) == TOP_K
    assert next(iter(code.frequencies)) == "c000"  # most frequent first
    assert code.other_count == sum(n_levels - i for i in range(TOP_K, n_levels))
    assert code.count == len(values)


def test_nulls_missing_columns_and_invalid_values(reference: Profile) -> None:
    live = rent_frame(n=300, seed=3).drop(columns=["rooms"])
    live["area"] = live["area"].astype(object)
    live.loc[:9, "area"] = "n/a"
    live.loc[10:14, "area"] = np.inf
    live.loc[15:29, "area"] = None
    current = current_profile(live, reference)
    area = numeric(current, "area")
    assert (area.invalid_count, area.null_count, area.count) == (15, 15, 270)
    assert sum(area.counts) == 270
    assert current.missing_columns == ["rooms"]
    rooms = numeric(current, "rooms")
    assert (rooms.count, rooms.null_count, rooms.null_rate) == (0, 300, 1.0)


def test_all_null_column_and_one_row_frame(schema: FeatureSchema, frame: pd.DataFrame) -> None:
    empty = frame.copy()
    empty["age"] = np.nan
    empty["city"] = None
    ref = reference_profile(empty, schema)
    age = numeric(ref, "age")
    assert (age.edges, age.counts, age.count, age.null_count) == ([], [0], 0, N)
    assert age.mean is None
    assert age.quantiles == {}
    city = categorical(ref, "city")
    assert (city.frequencies, city.other_count, city.null_count) == ({}, 0, N)
    current = current_profile(frame, ref)
    assert numeric(current, "age").counts == [int(frame["age"].notna().sum())]
    assert categorical(current, "city").other_count == frame["city"].notna().sum()

    one = reference_profile(frame.iloc[:1], schema)
    area = numeric(one, "area")
    assert area.edges == [frame["area"].iloc[0]]
    assert area.counts == [1, 0]
    assert area.std == 0.0
    assert Profile.model_validate_json(one.model_dump_json()) == one
    assert numeric(current_profile(frame, one), "area").count == N


def test_json_round_trip(reference: Profile, tmp_path: Path) -> None:
    data = reference.model_dump(mode="json")
    assert Profile.model_validate(json.loads(json.dumps(data))) == reference
    path = reference.save(tmp_path / "nested" / "profile.json")
    assert Profile.load(path) == reference


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        Profile.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"n_rows": "many"}')
    with pytest.raises(DataError, match="not a modelcycle profile"):
        Profile.load(bad)


def test_merge_equals_profile_of_the_concatenation(reference: Profile) -> None:
    first, second = rent_frame(n=700, seed=4), rent_frame(n=1300, seed=5, shift=10.0)
    both = pd.concat([first, second], ignore_index=True)

    def window(f: pd.DataFrame) -> Profile:
        return current_profile(f, reference, predictions=f["rent"], target=f["rent"])

    merged, whole = merge(window(first), window(second)), window(both)
    assert merged.n_rows == whole.n_rows == 2_000
    for name in reference.columns:
        m, w = merged.columns[name], whole.columns[name]
        if isinstance(m, NumericProfile):
            assert isinstance(w, NumericProfile)
            assert (m.counts, m.fine_counts) == (w.counts, w.fine_counts)
            assert (m.count, m.null_count, m.min, m.max) == (w.count, w.null_count, w.min, w.max)
            assert m.mean == pytest.approx(w.mean, rel=1e-9)
            assert m.std == pytest.approx(w.std, rel=1e-9)
            # quantiles of a merge are interpolated within the fine bin holding the true one
            bounds = np.r_[w.min, w.fine_edges, w.max]
            for key, value in w.quantiles.items():
                j = max(int(np.searchsorted(bounds, value, side="left")), 1)
                assert bounds[j - 1] <= m.quantiles[key] <= bounds[j], (name, key)
        else:
            assert m == w
    for m_out, w_out in ((merged.prediction, whole.prediction), (merged.target, whole.target)):
        assert isinstance(m_out, NumericProfile)
        assert isinstance(w_out, NumericProfile)
        assert (m_out.counts, m_out.count) == (w_out.counts, w_out.count)


def test_merge_keeps_new_categories_and_refuses_other_references(
    reference: Profile, schema: FeatureSchema
) -> None:
    a, b = rent_frame(n=200, seed=6), rent_frame(n=200, seed=7)
    a.loc[:19, "city"] = "Bilbao"
    b.loc[:4, "city"] = "Bilbao"
    b.loc[5:9, "city"] = "Lugo"
    merged = merge(current_profile(a, reference), current_profile(b, reference))
    assert categorical(merged, "city").new_categories == {"Bilbao": 25, "Lugo": 5}
    other = reference_profile(rent_frame(seed=8, shift=5.0), schema)
    with pytest.raises(ValueError, match="different bin edges"):
        merge(reference, other)


def test_classification_outcomes_and_bad_outcomes(frame: pd.DataFrame) -> None:
    labelled = frame.assign(rent=np.where(frame["rent"] > 1000, "high", "normal"))
    schema = FeatureSchema.infer(labelled, target="rent", id_column="id", time_column="listed")
    proba = np.linspace(0, 1, N)
    ref = reference_profile(labelled, schema, predictions=proba, target=labelled["rent"])
    assert isinstance(ref.prediction, NumericProfile)
    assert isinstance(ref.target, CategoricalProfile)
    assert set(ref.target.frequencies) == {"high", "normal"}
    labels = reference_profile(labelled, schema, predictions=labelled["rent"].to_numpy())
    assert isinstance(labels.prediction, CategoricalProfile)
    with pytest.raises(ValueError, match="1-D"):
        reference_profile(labelled, schema, predictions=np.ones((N, 3)))
    with pytest.raises(ValueError, match="rows"):
        reference_profile(labelled, schema, target=labelled["rent"].iloc[:10])
    no_outcomes = reference_profile(labelled, schema)
    with pytest.raises(ValueError, match="no target profile"):
        current_profile(labelled, no_outcomes, target=labelled["rent"])
    with pytest.raises(ValueError, match="at least 1"):
        reference_profile(labelled, schema, bins=0)


def test_large_frame_is_profiled() -> None:
    # 200k rows x 10 numeric columns (the same code handles 1M in about a second)
    rng = np.random.default_rng(9)
    n = 200_000
    big = pd.DataFrame({f"x{i}": rng.normal(i, 1 + i, n) for i in range(10)})
    big.loc[rng.random(n) < 0.02, "x3"] = np.nan
    schema = FeatureSchema.infer(big)
    ref = reference_profile(big, schema)
    current = current_profile(big + 0.5, ref)
    for name in big.columns:
        col = numeric(current, name)
        assert sum(col.counts) == col.count == big[name].notna().sum()
    assert len(ref.model_dump_json()) < 200_000  # features x bins, not rows
