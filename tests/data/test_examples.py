"""Dataset expectations for the running examples (``modelcycle.data.examples``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mean_absolute_error, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelcycle.data import examples as ex
from modelcycle.data.examples import (
    NEIGHBORHOODS,
    SCENARIOS,
    rent_apartments,
    rent_default,
)
from modelcycle.errors import DataError

ROWS = 5000
YES_NO = ["balcony", "storage", "parking", "furnished", "garage", "garden"]


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return rent_apartments(ROWS, seed=42, messy=False)


@pytest.fixture(scope="module")
def messy() -> pd.DataFrame:
    return rent_apartments(ROWS, seed=42)


@pytest.fixture(scope="module")
def big_clean() -> pd.DataFrame:
    return rent_apartments(20_000, seed=7, messy=False)


@pytest.fixture(scope="module")
def big_messy() -> pd.DataFrame:
    return rent_apartments(20_000, seed=7)


@pytest.fixture(scope="module")
def default() -> pd.DataFrame:
    return rent_default(20_000, seed=42)


def _numeric_years(frame: pd.DataFrame) -> pd.Series:
    return pd.to_numeric(frame["construction_year"], errors="coerce")


def _model_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    features = frame.drop(columns=["rent", "address", "zip", "facilities"])
    for column in YES_NO:
        features[column] = (features[column] == "yes").astype(float)
    features["energy"] = features["energy"].map({label: i for i, label in enumerate("ABCDEFG")})
    return pd.get_dummies(features, columns=["neighborhood"], dtype=float)


# --- schema ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("is_messy", [True, False])
def test_columns_and_order(is_messy: bool) -> None:
    # guards: the frame has the course file's columns, in the course file's order
    frame = rent_apartments(200, messy=is_messy)
    assert tuple(frame.columns) == ex.RENT_APARTMENTS_COLUMNS
    assert list(frame.columns[:3]) == ["address", "area", "construction_year"]
    assert frame.columns[-1] == "rent"
    assert len(frame) == 200


def test_rent_default_columns() -> None:
    # guards: the classification example has its documented columns, in order, with a 0/1 target
    frame = rent_default(300)
    assert tuple(frame.columns) == ex.RENT_DEFAULT_COLUMNS
    assert set(frame["late_payment"].unique()) <= {0, 1}
    assert frame["late_payment"].dtype.kind == "i"


def test_clean_types_and_ranges(clean: pd.DataFrame) -> None:
    # guards: without messiness every column has a plain type and a realistic range
    assert clean["area"].dtype == np.float64
    assert clean["area"].between(20, 280).all()
    assert clean["area"].median() == pytest.approx(72, rel=0.1)
    assert clean["area"].mean() > clean["area"].median()  # right-skewed
    for column in ["construction_year", "rooms", "bedrooms", "bathrooms"]:
        assert clean[column].dtype.kind == "i", column
    assert clean["construction_year"].between(1890, 2024).all()
    assert (clean["bedrooms"] <= clean["rooms"]).all()
    assert clean["rooms"].between(1, 8).all()
    assert clean["bathrooms"].between(1, 3).all()
    for column in YES_NO:
        assert set(clean[column].unique()) == {"yes", "no"}, column
    assert set(clean["energy"].unique()) == set("ABCDEFG")
    assert set(clean["neighborhood"].unique()) == set(NEIGHBORHOODS)
    assert clean["rent"].gt(0).all()
    assert (clean["rent"] % 5 == 0).all()  # advertised in whole euros, steps of 5


def test_free_text_columns(clean: pd.DataFrame) -> None:
    # guards: address, facilities and zip look like the course file's free text
    assert clean["address"].str.fullmatch(r"[A-Za-z .'-]+ \d{1,3}(-[123H])?").all()
    assert clean["zip"].str.fullmatch(r"\d{4}[A-Z]{2}").all()
    listed = clean["facilities"].str.split(", ").explode()
    assert set(listed[listed != ""]) <= set(ex.FACILITIES)
    assert (clean["facilities"] == "").any()  # some apartments list no facility at all


def test_zip_tied_to_neighborhood(clean: pd.DataFrame) -> None:
    # guards: each 4-digit postcode belongs to exactly one neighborhood
    prefixes = clean["zip"].str[:4]
    assert (
        prefixes.groupby(prefixes)
        .apply(lambda group: clean.loc[group.index, "neighborhood"].nunique())
        .eq(1)
        .all()
    )


# --- determinism ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_same_seed_same_frame(scenario: str) -> None:
    # guards: a seed reproduces the frame exactly, for every scenario
    pd.testing.assert_frame_equal(
        rent_apartments(500, seed=3, scenario=scenario),
        rent_apartments(500, seed=3, scenario=scenario),
    )


def test_different_seed_different_frame() -> None:
    # guards: the seed matters
    first, second = rent_apartments(500, seed=1), rent_apartments(500, seed=2)
    assert not first.equals(second)
    assert not first["rent"].equals(second["rent"])


def test_rent_default_deterministic() -> None:
    # guards: rent_default is reproducible and seed-dependent
    pd.testing.assert_frame_equal(rent_default(500, seed=5), rent_default(500, seed=5))
    assert not rent_default(500, seed=5).equals(rent_default(500, seed=6))


def test_messy_false_is_the_same_apartments(clean: pd.DataFrame, messy: pd.DataFrame) -> None:
    # guards: messy=True corrupts the messy=False apartments instead of drawing new ones
    same_address = (clean["address"] == messy["address"]).mean()
    assert same_address > 0.98  # only the ~1 % duplicated rows differ


# --- the rent: level, shape, learnability ---------------------------------------------------------


def test_rent_median_near_1800(clean: pd.DataFrame) -> None:
    # guards: the baseline rent level (median near EUR 1,800 a month)
    assert 1600 <= clean["rent"].median() <= 2000


def test_price_per_m2_falls_with_area(big_clean: pd.DataFrame) -> None:
    # guards: the non-linear (concave) area effect -- large flats are cheaper per m2
    per_m2 = big_clean["rent"] / big_clean["area"]
    assert per_m2[big_clean["area"] > 120].median() < per_m2[big_clean["area"] < 60].median()


def test_rent_rises_with_area(big_clean: pd.DataFrame) -> None:
    # guards: the monotonic tendency -- bigger apartments have a higher median rent
    bins = pd.qcut(big_clean["area"], 6)
    medians = big_clean.groupby(bins, observed=True)["rent"].median()
    assert medians.is_monotonic_increasing


def test_neighborhoods_differ_in_price(big_clean: pd.DataFrame) -> None:
    # guards: the neighborhood price levels are visible in the data
    per_m2 = (big_clean["rent"] / big_clean["area"]).groupby(big_clean["neighborhood"]).median()
    assert per_m2.max() / per_m2.min() > 1.6
    levels = pd.Series(NEIGHBORHOODS)
    assert per_m2.corr(levels[per_m2.index], method="spearman") > 0.8


def test_noise_is_heteroscedastic(big_clean: pd.DataFrame) -> None:
    # guards: multiplicative noise -- the rent spreads more where it is higher
    expensive = big_clean["neighborhood"].map(NEIGHBORHOODS) >= 1.3
    cheap = big_clean["neighborhood"].map(NEIGHBORHOODS) <= 0.85
    middle = big_clean["area"].between(60, 80)
    assert big_clean.loc[expensive & middle, "rent"].std() > (
        1.3 * big_clean.loc[cheap & middle, "rent"].std()
    )


def test_energy_label_follows_age(big_clean: pd.DataFrame) -> None:
    # guards: energy labels are correlated with the construction year
    years = big_clean.groupby("energy")["construction_year"].median()
    assert years["A"] > years["D"] > years["G"]


def test_extras_raise_the_rent(big_clean: pd.DataFrame) -> None:
    # guards: extras are priced (rent per m2**0.7 and per price level, with vs without the extra)
    level = big_clean["neighborhood"].map(NEIGHBORHOODS)
    per_m2 = big_clean["rent"] / big_clean["area"] ** 0.7 / level
    for extra in ["garden", "garage", "furnished"]:
        has = big_clean[extra] == "yes"
        assert per_m2[has].median() > per_m2[~has].median(), extra


def test_random_forest_beats_the_median(clean: pd.DataFrame) -> None:
    # guards: the rent is learnable -- a small forest clearly beats predicting the median
    features = _model_matrix(clean)
    x_train, x_test, y_train, y_test = train_test_split(
        features, clean["rent"], test_size=0.25, random_state=0
    )
    forest = RandomForestRegressor(n_estimators=60, min_samples_leaf=2, random_state=0, n_jobs=2)
    forest.fit(x_train, y_train)
    model_mae = mean_absolute_error(y_test, forest.predict(x_test))
    median_mae = mean_absolute_error(y_test, np.full(len(y_test), y_train.median()))
    assert model_mae < 0.6 * median_mae


# --- planted problems -----------------------------------------------------------------------------


def test_duplicates_planted(big_messy: pd.DataFrame, big_clean: pd.DataFrame) -> None:
    # guards: ~1 % exact duplicate rows when messy, none when clean
    expected = ex.DUPLICATE_RATE * len(big_messy)
    assert big_messy.duplicated().sum() == pytest.approx(expected, rel=0.1)
    assert big_clean.duplicated().sum() == 0


def test_impossible_years_planted(big_messy: pd.DataFrame, big_clean: pd.DataFrame) -> None:
    # guards: ~0.2 % impossible construction years when messy, none when clean
    years = _numeric_years(big_messy)
    impossible = years[(years < 1800) | (years > 2025)]
    assert set(impossible.unique()) <= set(ex.IMPOSSIBLE_YEARS)
    assert len(impossible) == pytest.approx(ex.IMPOSSIBLE_YEAR_RATE * len(big_messy), rel=0.25)
    assert _numeric_years(big_clean).between(1800, 2025).all()


@pytest.mark.parametrize("column", ex.NONE_STRING_COLUMNS)
def test_none_strings_planted(
    column: str, big_messy: pd.DataFrame, big_clean: pd.DataFrame
) -> None:
    # guards: the literal text "None" appears at ~0.5 % when messy, never when clean
    share = (big_messy[column].astype(str) == ex.NONE_STRING).mean()
    assert share == pytest.approx(ex.NONE_STRING_RATE, rel=0.25)
    assert not (big_clean[column].astype(str) == ex.NONE_STRING).any()
    # a column holding "None" is text, as a CSV reader that does not guess missing values gives it
    assert not pd.api.types.is_numeric_dtype(big_messy["construction_year"])


@pytest.mark.parametrize(("column", "rate"), list(ex.MISSING_RATES.items()))
def test_missing_values_planted(
    column: str, rate: float, big_messy: pd.DataFrame, big_clean: pd.DataFrame
) -> None:
    # guards: NaNs at the documented rate per column when messy, none at all when clean
    assert big_messy[column].isna().mean() == pytest.approx(rate, rel=0.15)
    assert not big_clean.isna().any().any()


def test_outliers_planted(big_messy: pd.DataFrame, big_clean: pd.DataFrame) -> None:
    # guards: ~0.2 % rents x5 and ~0.1 % areas x10 when messy; clean data has neither
    rows = len(big_messy)
    rent_ratio = big_messy["rent"] / big_clean["rent"]
    area_ratio = big_messy["area"] / big_clean["area"]
    assert (rent_ratio == ex.RENT_OUTLIER_FACTOR).sum() == pytest.approx(
        ex.RENT_OUTLIER_RATE * rows, rel=0.25
    )
    assert np.isclose(area_ratio, ex.AREA_TYPO_FACTOR, rtol=1e-3).sum() == pytest.approx(
        ex.AREA_TYPO_RATE * rows, rel=0.3
    )
    assert big_messy["area"].max() > 280
    assert big_clean["area"].max() <= 280


def test_clean_frame_has_no_problem(clean: pd.DataFrame) -> None:
    # guards: messy=False means none of the planted problems, whatever the seed
    for seed in (0, 1):
        frame = rent_apartments(2000, seed=seed, messy=False)
        assert not frame.duplicated().any()
        assert not frame.isna().any().any()
        assert not (frame.astype(str) == ex.NONE_STRING).any().any()
        assert frame["construction_year"].dtype.kind == "i"
    assert clean["rent"].max() < 15_000


# --- scenarios ------------------------------------------------------------------------------------


def test_inflation_moves_only_the_rent(clean: pd.DataFrame) -> None:
    # guards: inflation = same apartments, rents x1.08 (up to rounding to 5 euros)
    inflated = rent_apartments(ROWS, seed=42, scenario="inflation", messy=False)
    pd.testing.assert_frame_equal(inflated.drop(columns="rent"), clean.drop(columns="rent"))
    ratio = inflated["rent"] / clean["rent"]
    assert ratio.median() == pytest.approx(1 + ex.INFLATION_RATE, abs=0.003)
    assert ratio.between(1.06, 1.10).all()


def test_new_neighborhood(clean: pd.DataFrame) -> None:
    # guards: an unseen neighborhood takes ~10 % of rows, with its own postcodes
    shifted = rent_apartments(ROWS, seed=42, scenario="new_neighborhood", messy=False)
    new = shifted["neighborhood"] == ex.NEW_NEIGHBORHOOD
    assert ex.NEW_NEIGHBORHOOD not in NEIGHBORHOODS
    assert ex.NEW_NEIGHBORHOOD not in set(clean["neighborhood"])
    assert new.mean() == pytest.approx(ex.NEW_NEIGHBORHOOD_SHARE, abs=0.01)
    assert not set(shifted.loc[new, "zip"].str[:4]) & set(clean["zip"].str[:4])
    assert (shifted.loc[~new, "rent"] == clean.loc[~new, "rent"]).all()


def test_bigger_apartments(clean: pd.DataFrame) -> None:
    # guards: areas shift up x1.35 and the rent follows the same (concave) function
    bigger = rent_apartments(ROWS, seed=42, scenario="bigger_apartments", messy=False)
    assert bigger["area"].median() / clean["area"].median() == pytest.approx(
        ex.AREA_SCALE, rel=0.01
    )
    rent_ratio = bigger["rent"].median() / clean["rent"].median()
    assert 1.1 < rent_ratio < ex.AREA_SCALE
    assert bigger["rooms"].mean() > clean["rooms"].mean()


def test_missing_spike() -> None:
    # guards: missing_spike makes ~40 % of area null
    spiked = rent_apartments(ROWS, seed=42, scenario="missing_spike", messy=False)
    share = spiked[ex.MISSING_SPIKE_COLUMN].isna().mean()
    assert share == pytest.approx(ex.MISSING_SPIKE_RATE, abs=0.01)
    assert spiked.drop(columns=ex.MISSING_SPIKE_COLUMN).notna().all().all()


def test_schema_break() -> None:
    # guards: schema_break renames area to surface_m2 and turns rooms into text
    broken = rent_apartments(ROWS, seed=42, scenario="schema_break")
    assert "area" not in broken.columns
    assert "surface_m2" in broken.columns
    assert list(broken.columns).index("surface_m2") == 1
    assert not pd.api.types.is_numeric_dtype(broken["rooms"])
    assert broken["rooms"].str.fullmatch(r"\d rooms?").all()
    assert pd.to_numeric(broken["rooms"], errors="coerce").isna().all()


# --- rent_default ---------------------------------------------------------------------------------


def test_default_positive_rate(default: pd.DataFrame) -> None:
    # guards: the class imbalance -- about 6 % of tenants pay late
    assert 0.05 <= default["late_payment"].mean() <= 0.07


def test_default_is_learnable(default: pd.DataFrame) -> None:
    # guards: the late-payment signal is learnable (holdout ROC AUC well above chance)
    features = pd.get_dummies(
        default[["rent_to_income", "previous_late_payments", "months_at_address", "age"]].join(
            default[["employment", "has_guarantor"]]
        ),
        dtype=float,
    )
    x_train, x_test, y_train, y_test = train_test_split(
        features,
        default["late_payment"],
        test_size=0.3,
        random_state=0,
        stratify=default["late_payment"],
    )
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x_train, y_train)
    assert roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]) > 0.7


def test_default_columns_are_consistent(default: pd.DataFrame) -> None:
    # guards: ids unique, contracts in time order, rent_to_income = rent / income, valid categories
    assert default["tenant_id"].is_unique
    assert default["contract_start"].is_monotonic_increasing
    assert pd.api.types.is_datetime64_any_dtype(default["contract_start"])
    ratio = default["rent"] / default["monthly_income"]
    assert np.allclose(default["rent_to_income"], ratio, atol=5e-4)
    assert set(default["employment"].unique()) == set(ex.EMPLOYMENT_TYPES)
    assert set(default["has_guarantor"].unique()) == {"yes", "no"}
    assert set(default["neighborhood"].unique()) <= set(NEIGHBORHOODS)
    assert default["age"].between(18, 75).all()
    assert (default["previous_late_payments"] >= 0).all()


# --- errors and size ------------------------------------------------------------------------------


def test_bad_scenario_names_the_valid_ones() -> None:
    # guards: a typo in the scenario gives one clear error with a suggestion and the valid names
    with pytest.raises(DataError) as caught:
        rent_apartments(10, scenario="inflaton")
    message = str(caught.value)
    assert "did you mean 'inflation'" in message
    for name in SCENARIOS:
        assert name in message


@pytest.mark.parametrize("rows", [0, -5])
def test_bad_row_count(rows: int) -> None:
    # guards: fewer than one row is a user error, not an empty frame or a numpy traceback
    with pytest.raises(DataError, match="rows"):
        rent_apartments(rows)
    with pytest.raises(DataError, match="rows"):
        rent_default(rows)


def test_negative_seed() -> None:
    # guards: a negative seed is a user error with a clear message
    with pytest.raises(DataError, match="seed"):
        rent_apartments(10, seed=-1)


def test_one_row() -> None:
    # guards: the smallest frame works (rates round to zero planted problems)
    assert len(rent_apartments(1)) == 1
    assert len(rent_default(1)) == 1


def test_messy_frame_round_trips_through_files(messy: pd.DataFrame, tmp_path: Path) -> None:
    # guards: the messy frame can be written as Parquet and CSV (no mixed-type object column)
    messy.to_parquet(tmp_path / "rent.parquet", index=False)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "rent.parquet"), messy)
    messy.to_csv(tmp_path / "rent.csv", index=False)
    back = pd.read_csv(tmp_path / "rent.csv", keep_default_na=False, na_values=[""])
    assert (back["construction_year"].astype(str) == ex.NONE_STRING).sum() > 0
    assert len(back) == len(messy)


def test_large_frame_generates() -> None:
    # guards: vectorised generation works at scale (200k rows; not timed, per the bench rules)
    frame = rent_apartments(200_000, seed=1)
    assert frame.shape == (200_000, len(ex.RENT_APARTMENTS_COLUMNS))
    assert frame.duplicated().sum() == pytest.approx(2000, rel=0.05)


def test_describe_generating_process() -> None:
    # guards: the plain-text summary names every scenario and neighborhood
    text = ex.describe_generating_process()
    for name in (*SCENARIOS, *NEIGHBORHOODS):
        assert name in text
