"""validate(): one finding per problem, with the right check, severity and column."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelcycle.config.spec import ProjectSpec, parse_spec
from modelcycle.data.io import Dataset, read_table
from modelcycle.data.schema import FeatureSchema
from modelcycle.data.validation import (
    SEVERITY_ORDER,
    Finding,
    ValidationReport,
    require_columns,
    validate,
    write_html_report,
)
from modelcycle.errors import DataError

N = 60


def make_spec(top: str = "", sections: str = "", validation: str = "min_rows = 5") -> ProjectSpec:
    return parse_spec(
        f'name = "flats"\ntarget = "rent"\n{top}\n[data]\npath = "flats.csv"\n'
        f"[validation]\n{validation}\n{sections}"
    )


def clean_frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    area = rng.uniform(30, 150, n).round(1)
    return pd.DataFrame(
        {
            "flat_id": np.arange(n),
            "area": area,
            "rooms": rng.integers(1, 6, n),
            "energy": rng.choice(list("ABCD"), n),
            # related to area, but far from a perfect correlation
            "rent": (area * 10 + rng.normal(0, 300, n)).round(2),
        }
    )


def run(
    frame: pd.DataFrame, spec: ProjectSpec | None = None, schema: FeatureSchema | None = None
) -> ValidationReport:
    return validate(Dataset(frame=frame, source="flats.csv"), spec or make_spec(), schema)


def find(report: ValidationReport, check: str, column: str | None = None) -> list[Finding]:
    return [
        f for f in report.findings if f.check == check and (column is None or f.column == column)
    ]


def only(report: ValidationReport, check: str, column: str | None = None) -> Finding:
    found = find(report, check, column)
    assert len(found) == 1, f"expected one {check} finding, got {report.findings}"
    return found[0]


# ---------------------------------------------------------------- clean data and the report


def test_clean_data_is_ok() -> None:
    report = run(clean_frame(), make_spec('id_column = "flat_id"'))
    assert report.ok
    assert report.errors == []
    assert [f for f in report.findings if f.severity != "info"] == []
    assert report.n_rows == N
    assert report.n_columns == 5
    assert report.source == "flats.csv"


def test_report_json_and_order() -> None:
    frame = clean_frame()
    frame["empty"] = np.nan  # error
    frame["same"] = "x"  # warning
    frame.loc[3, "area"] = np.nan  # info: missing values
    report = run(frame)
    severities = [f.severity for f in report.findings]
    assert severities == sorted(severities, key=SEVERITY_ORDER.__getitem__)
    assert {"error", "warning", "info"} <= set(severities)
    data = json.loads(report.to_json())
    assert data["ok"] is False
    assert data["rows"] == N
    assert data["columns"] == 7
    assert data["counts"] == report.counts()
    assert data["counts"]["error"] == len(report.errors) >= 1
    assert sum(data["counts"].values()) == len(report.findings) == len(data["findings"])
    first = data["findings"][0]
    assert set(first) == {"severity", "check", "message", "column", "count", "hint"}
    assert first["severity"] == "error"


def test_read_notes_become_info_findings(tmp_path: Path) -> None:
    path = tmp_path / "flats.csv"
    clean_frame().rename(columns={"area": "area "}).to_csv(path, index=False)
    report = validate(read_table(path), make_spec())
    note = only(report, "read")
    assert note.severity == "info"
    assert "'area '" in note.message


# ---------------------------------------------------------------- shape


def test_one_row_is_an_error() -> None:
    report = run(clean_frame(1), make_spec(validation=""))
    finding = only(report, "rows")
    assert finding.severity == "error"
    assert finding.count == 1
    assert "1 row;" in finding.message
    assert "at least 30" in finding.message
    assert not report.ok


def test_min_rows_from_spec() -> None:
    assert not find(run(clean_frame(40), make_spec(validation="min_rows = 40")), "rows")
    finding = only(run(clean_frame(39), make_spec(validation="min_rows = 40")), "rows")
    assert "39 rows" in finding.message


def test_few_duplicate_rows_warn() -> None:
    frame = clean_frame()
    frame.iloc[1] = frame.iloc[0]  # 1 of 60 rows = 1.7% <= 5%
    finding = only(run(frame), "duplicates")
    assert finding.severity == "warning"
    assert finding.count == 1


def test_many_duplicate_rows_are_an_error() -> None:
    frame = clean_frame()
    frame.iloc[1:5] = frame.iloc[0].to_numpy()  # 4 of 60 = 6.7% > 5%
    finding = only(run(frame), "duplicates")
    assert finding.severity == "error"
    assert finding.count == 4
    # a looser threshold in the spec makes it a warning
    relaxed = make_spec(validation="min_rows = 5\nduplicate_rows = 0.1")
    assert only(run(frame, relaxed), "duplicates").severity == "warning"


def test_all_null_column_is_an_error() -> None:
    frame = clean_frame().assign(notes=np.nan)
    finding = only(run(frame), "all_null", "notes")
    assert finding.severity == "error"
    assert finding.count == N
    assert not find(run(frame), "constant", "notes")


def test_constant_column_warns() -> None:
    frame = clean_frame().assign(city="Köln")
    finding = only(run(frame), "constant", "city")
    assert finding.severity == "warning"
    assert "'Köln'" in finding.message


def test_infinite_values_are_an_error() -> None:
    frame = clean_frame()
    frame.loc[[2, 7], "area"] = [np.inf, -np.inf]
    finding = only(run(frame), "infinite", "area")
    assert finding.severity == "error"
    assert finding.count == 2


def test_missing_values_summary_is_info() -> None:
    frame = clean_frame()
    frame.loc[:5, "area"] = np.nan
    finding = only(run(frame), "missing_values")
    assert finding.severity == "info"
    assert finding.count == 6
    assert "area 10.0%" in finding.message


def test_mixed_types_from_csv(tmp_path: Path) -> None:
    frame = clean_frame().astype({"area": "object"})
    frame.loc[[4, 9], "area"] = ["unknown", "n.a."]
    path = tmp_path / "flats.csv"
    frame.to_csv(path, index=False)
    dataset = read_table(path)
    assert "area" in dataset.mixed_types
    finding = only(validate(dataset, make_spec()), "mixed_types", "area")
    assert finding.severity == "error"
    assert finding.count == 2
    assert "'unknown'" in finding.message
    assert "'n.a.'" in finding.message


# ---------------------------------------------------------------- target


def test_target_absent_names_closest_column() -> None:
    frame = clean_frame().rename(columns={"rent": "rent_eur"})
    report = run(frame)
    finding = only(report, "missing_column")
    assert finding.severity == "error"
    assert "target column 'rent' is not in the data" in finding.message
    assert "did you mean 'rent_eur'?" in finding.hint
    assert not report.ok


def test_target_absent_finding_has_the_column() -> None:
    # every other column finding sets `column`; the report's column cell should not be blank
    finding = only(run(clean_frame().drop(columns=["rent"])), "missing_column")
    assert finding.column == "rent"


def test_target_missing_values_warn() -> None:
    frame = clean_frame()
    frame.loc[[1, 2, 3], "rent"] = np.nan
    finding = only(run(frame), "target_missing", "rent")
    assert finding.severity == "warning"
    assert finding.count == 3
    assert "3 rows (5.0%)" in finding.message


def test_single_class_target_is_an_error() -> None:
    frame = clean_frame().assign(rent="paid")
    report = run(frame, make_spec('task = "classification"'))
    finding = only(report, "single_class", "rent")
    assert finding.severity == "error"
    assert "'paid'" in finding.message
    assert not find(report, "constant", "rent")  # reported once, as the target problem


def test_single_class_inferred_task() -> None:
    report = run(clean_frame().assign(rent=1))
    assert only(report, "single_class", "rent").severity == "error"


def test_two_classes_are_fine() -> None:
    frame = clean_frame().assign(rent=["paid", "late"] * (N // 2))
    report = run(frame, make_spec('task = "classification"'))
    assert not find(report, "single_class")
    assert report.ok


def test_regression_target_with_strings_is_an_error() -> None:
    frame = clean_frame().astype({"rent": "object"})
    frame.loc[0, "rent"] = "on request"
    finding = only(run(frame, make_spec('task = "regression"')), "target_type", "rent")
    assert finding.severity == "error"


# ---------------------------------------------------------------- leakage and outliers


def test_leakage_warns() -> None:
    frame = clean_frame()
    frame["rent_per_year"] = frame["rent"] * 12 + 1
    report = run(frame)
    finding = only(report, "leakage", "rent_per_year")
    assert finding.severity == "warning"
    assert "(1.000)" in finding.message
    assert not find(report, "leakage", "area")


def test_leakage_ignores_dropped_columns() -> None:
    frame = clean_frame()
    frame["rent_per_year"] = frame["rent"] * 12
    assert not find(run(frame, make_spec('drop = ["rent_per_year"]')), "leakage")


def test_leakage_with_binary_text_target() -> None:
    frame = clean_frame().assign(rent=["late", "paid"] * (N // 2))
    frame["reminders"] = (frame["rent"] == "late").astype(int) * 3
    finding = only(run(frame, make_spec('task = "classification"')), "leakage", "reminders")
    assert finding.severity == "warning"


def test_outliers_warn_on_target_and_note_on_features() -> None:
    frame = clean_frame()
    frame.loc[0, "rent"] = 1e7
    frame.loc[1, "area"] = 1e5
    report = run(frame)
    assert only(report, "outliers", "rent").severity == "warning"
    assert only(report, "outliers", "area").severity == "info"


# ---------------------------------------------------------------- spec rules


def _rules(body: str, invalid_share: float = 0.01) -> ProjectSpec:
    return make_spec(sections=body, validation=f"min_rows = 5\ninvalid_share = {invalid_share}")


def test_few_impossible_values_warn() -> None:
    frame = clean_frame(200)
    frame.loc[0, "area"] = 2.0  # 1 of 200 = 0.5% <= 1%
    finding = only(run(frame, _rules("[validation.columns.area]\nmin = 10\n")), "impossible_value")
    assert finding.severity == "warning"
    assert finding.column == "area"
    assert finding.count == 1
    assert "below the minimum 10" in finding.message


def test_many_impossible_values_are_an_error() -> None:
    frame = clean_frame(200)
    frame.loc[:9, "area"] = 5000.0  # 10 of 200 = 5% > 1%
    report = run(frame, _rules("[validation.columns.area]\nmin = 10\nmax = 1000\n"))
    finding = only(report, "impossible_value", "area")
    assert finding.severity == "error"
    assert finding.count == 10
    assert "above the maximum 1000" in finding.message
    relaxed = run(frame, _rules("[validation.columns.area]\nmax = 1000\n", invalid_share=0.1))
    assert only(relaxed, "impossible_value", "area").severity == "warning"


def test_allowed_values_rule() -> None:
    frame = clean_frame()
    frame.loc[[0, 1], "energy"] = ["Z", "?"]
    report = run(frame, _rules('[validation.columns.energy]\nallowed = ["A", "B", "C", "D"]\n'))
    finding = only(report, "impossible_value", "energy")
    assert finding.count == 2
    assert finding.severity == "error"  # 2 of 60 > 1%
    assert "'Z'" in finding.message


def test_not_nullable_rule() -> None:
    frame = clean_frame()
    frame.loc[[3, 4], "rooms"] = np.nan
    finding = only(run(frame, _rules("[validation.columns.rooms]\nnullable = false\n")), "nullable")
    assert finding.severity == "error"
    assert finding.column == "rooms"
    assert finding.count == 2


def test_rule_for_absent_column_warns() -> None:
    report = run(clean_frame(), _rules("[validation.columns.balcony]\nnullable = false\n"))
    finding = only(report, "missing_column", "balcony")
    assert finding.severity == "warning"
    assert "validation.columns" in finding.message


def test_values_within_rules_pass() -> None:
    rules = "[validation.columns.area]\nmin = 10\nmax = 1000\n[validation.columns.rooms]\nmin = 1\n"
    report = run(clean_frame(), _rules(rules))
    assert not find(report, "impossible_value")
    assert report.ok


# ---------------------------------------------------------------- against a saved schema


@pytest.fixture
def schema() -> FeatureSchema:
    return FeatureSchema.infer(clean_frame(), target="rent", id_column="flat_id")


def test_same_data_passes_schema(schema: FeatureSchema) -> None:
    report = run(clean_frame(), make_spec('id_column = "flat_id"'), schema)
    assert report.ok
    assert [f for f in report.findings if f.severity != "info"] == []


def test_missing_feature_column(schema: FeatureSchema) -> None:
    report = run(clean_frame().drop(columns=["rooms"]), schema=schema)
    finding = only(report, "missing_column", "rooms")
    assert finding.severity == "error"
    assert "feature column 'rooms'" in finding.message


def test_missing_id_column_only_warns(schema: FeatureSchema) -> None:
    report = run(clean_frame().drop(columns=["flat_id"]), schema=schema)
    assert only(report, "missing_column", "flat_id").severity == "warning"


def test_extra_column(schema: FeatureSchema) -> None:
    frame = clean_frame().assign(floor=np.arange(N) % 7)
    finding = only(run(frame, schema=schema), "extra_columns")
    assert finding.severity == "warning"
    assert "floor" in finding.message


def test_type_change(schema: FeatureSchema) -> None:
    frame = clean_frame()
    frame["rooms"] = frame["rooms"].map(lambda v: f"{v} rooms")
    finding = only(run(frame, schema=schema), "type", "rooms")
    assert finding.severity == "error"
    assert "should hold numbers" in finding.message
    assert " rooms'" in finding.message  # an example of the bad values


def test_out_of_range(schema: FeatureSchema) -> None:
    frame = clean_frame(seed=0)
    frame.loc[[0, 1], "area"] = [schema.column("area").max + 50, schema.column("area").min - 5]
    finding = only(run(frame, schema=schema), "out_of_range", "area")
    assert finding.severity == "warning"
    assert finding.count == 2


def test_unseen_category(schema: FeatureSchema) -> None:
    frame = clean_frame()
    frame.loc[[0, 1, 2], "energy"] = "G"
    finding = only(run(frame, schema=schema), "unseen_category", "energy")
    assert finding.severity == "warning"
    assert finding.count == 3
    assert "'G'" in finding.message


def test_null_spike(schema: FeatureSchema) -> None:
    frame = clean_frame()
    frame.loc[: N // 4, "area"] = np.nan  # 25% empty against 0%
    finding = only(run(frame, schema=schema), "null_spike", "area")
    assert finding.severity == "error"
    assert finding.count == N // 4 + 1


def test_small_null_rise_is_not_a_spike(schema: FeatureSchema) -> None:
    frame = clean_frame()
    frame.loc[:2, "area"] = np.nan  # 5% <= 10%
    assert not find(run(frame, schema=schema), "null_spike")


# ---------------------------------------------------------------- require_columns and HTML


def test_require_columns() -> None:
    spec = make_spec('id_column = "flat_id"\ntime_column = "listed_at"')
    with pytest.raises(DataError) as info:
        require_columns(clean_frame(), spec)
    assert "time_column column 'listed_at'" in info.value.message
    require_columns(clean_frame().assign(listed_at="2024-01-01"), spec)


def test_html_report_contains_every_finding(tmp_path: Path) -> None:
    frame = clean_frame()
    frame["<b>bold</b> & co"] = np.nan
    frame["same"] = "x"
    report = run(frame)
    assert len(report.findings) >= 2
    path = write_html_report(report, tmp_path / "reports" / "validation.html")
    page = path.read_text(encoding="utf-8")
    for finding in report.findings:
        assert html.escape(finding.message, quote=True) in page
    assert "<b>bold</b>" not in page
    assert "FAILED" in page


def test_html_report_for_clean_data(tmp_path: Path) -> None:
    report = ValidationReport("flats.csv", 10, 3)
    page = write_html_report(report, tmp_path / "v.html").read_text(encoding="utf-8")
    assert "No problems found." in page
    assert "OK" in page
