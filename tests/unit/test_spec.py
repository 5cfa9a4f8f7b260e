"""The project spec: parsing, defaults, every kind of mistake, and finding the project."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelcycle.config.spec import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    SPEC_FILENAME,
    DataSource,
    find_project_root,
    load_project,
    parse_spec,
)
from modelcycle.errors import ConfigError, ProjectError

MINIMAL = """\
name = "rent"
target = "rent"

[data]
path = "data/rent.csv"
"""


def _spec(top: str = "", sections: str = "", data: str = 'path = "data/rent.csv"') -> str:
    return f'name = "rent"\ntarget = "rent"\n{top}\n[data]\n{data}\n{sections}'


def test_minimal_spec_parses_with_defaults() -> None:
    spec = parse_spec(MINIMAL)
    assert spec.name == "rent"
    assert spec.target == "rent"
    assert spec.data.path == Path("data/rent.csv")
    assert spec.data.url is None
    assert spec.task is None
    assert spec.metric is None
    assert spec.id_column is None
    assert spec.time_column is None
    assert spec.drop == []
    assert spec.split.method == "auto"
    assert spec.split.test_size == 0.2
    assert spec.split.valid_size == 0.2
    assert spec.split.seed == 42
    assert spec.imbalance.strategy == "none"
    assert spec.validation.min_rows == 30
    assert spec.validation.columns == {}
    assert spec.resolved_metric("regression") == "mae"
    assert spec.resolved_metric("classification") == "roc_auc"


def test_full_spec_parses() -> None:
    text = _spec(
        top='task = "classification"\nmetric = "pr_auc"\nid_column = "id"\n'
        'time_column = "ts"\ndrop = ["note"]',
        sections="""
[split]
method = "time"
test_size = 0.1
valid_size = 0.15
seed = 7

[imbalance]
strategy = "smote"
sampling_ratio = 0.5

[validation]
min_rows = 100
duplicate_rows = 0.2

[validation.columns.area]
min = 10
max = 1000
nullable = false

[validation.columns.energy]
allowed = ["A", "B"]
""",
    )
    spec = parse_spec(text)
    assert spec.task == "classification"
    assert spec.resolved_metric("classification") == "pr_auc"
    assert spec.drop == ["note"]
    assert spec.split.method == "time"
    assert spec.split.valid_size == 0.15
    assert spec.imbalance.strategy == "smote"
    assert spec.validation.min_rows == 100
    area = spec.validation.columns["area"]
    assert (area.min, area.max, area.nullable) == (10, 1000, False)
    assert spec.validation.columns["energy"].allowed == ["A", "B"]
    assert spec.validation.columns["energy"].nullable is True


def test_sql_source_parses() -> None:
    spec = parse_spec(_spec(data='url = "sqlite:///x.db"\ntable = "rent"'))
    assert spec.data.url == "sqlite:///x.db"
    assert spec.data.table == "rent"
    assert spec.data.path is None
    spec = parse_spec(_spec(data='url = "sqlite:///x.db"\nquery = "SELECT 1"'))
    assert spec.data.query == "SELECT 1"


@pytest.mark.parametrize(
    ("text", "key", "suggestion"),
    [
        (_spec(top='tsk = "regression"'), "`tsk`", "`task`"),
        (_spec(top='metrc = "mae"'), "`metrc`", "`metric`"),
        (_spec(top='id_colum = "id"'), "`id_colum`", "`id_column`"),
        (_spec(sections="[split]\ntset_size = 0.1\n"), "`split.tset_size`", "`test_size`"),
        (_spec(sections="[validation.columns.x]\nmn = 1\n"), "`validation.columns.x.mn`", "`min`"),
        (
            _spec(sections="[validation]\nnull_spik = 0.2\n"),
            "`validation.null_spik`",
            "`null_spike`",
        ),
        (
            _spec(sections="[imbalance]\nstrategyy = 'smote'\n"),
            "`imbalance.strategyy`",
            "`strategy`",
        ),
        (_spec(data='path = "a.csv"\ndelimter = ";"'), "`data.delimter`", "`delimiter`"),
    ],
)
def test_unknown_key_suggests_the_close_one(text: str, key: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec(text)
    message = str(info.value)
    assert f"unknown key {key} — did you mean {suggestion}?" in message
    assert "known keys:" not in message


def test_unknown_key_without_close_match_lists_known_keys() -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec(_spec(top="qwerty = 1"))
    message = str(info.value)
    assert "unknown key `qwerty`" in message
    assert "did you mean" not in message
    assert "known keys: name, target, task, metric" in message


def test_unknown_data_key_lists_data_keys() -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec(_spec(data='path = "a.csv"\nzzz = 1'))
    assert "unknown key `data.zzz`" in str(info.value)
    assert "known keys: path, url, table, query, delimiter, encoding" in str(info.value)


@pytest.mark.parametrize(
    ("text", "dotted", "value"),
    [
        (_spec(sections="[split]\ntest_size = 'big'\n"), "`split.test_size`", "'big'"),
        (_spec(sections="[split]\nseed = 1.5\n"), "`split.seed`", "1.5"),
        (_spec(sections="[split]\nmethod = 'rand'\n"), "`split.method`", "'rand'"),
        (_spec(sections="[validation.columns.x]\nmin = 'low'\n"), "`validation.columns.x.min`", ""),
        (_spec(sections="[validation]\nmin_rows = 1\n"), "`validation.min_rows`", "1"),
        (_spec(sections="[imbalance]\nsampling_ratio = 2\n"), "`imbalance.sampling_ratio`", "2"),
        (_spec(top='task = "regresion"'), "`task`", "'regresion'"),
        (_spec(top='drop = "address"'), "`drop`", "'address'"),
        (_spec(top="id_column = 3"), "`id_column`", "3"),
    ],
)
def test_wrong_type_names_the_dotted_key(text: str, dotted: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec(text)
    message = str(info.value)
    assert f"{dotted}:" in message
    assert f"(got {value}" in message
    assert info.value.hint is not None
    assert "modelcycle.toml" in info.value.hint


def test_error_message_says_where() -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec(_spec(top="tsk = 1"), where="/some/where.toml")
    assert str(info.value).startswith("invalid /some/where.toml:")


def test_several_problems_reported_together() -> None:
    text = _spec(top="tsk = 1", sections="[split]\nseed = 'x'\n")
    with pytest.raises(ConfigError) as info:
        parse_spec(text)
    assert "`tsk`" in str(info.value)
    assert "`split.seed`" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "name = \n",
        'name = "rent"\n[data\npath = "x"\n',
        'name = "rent"\nname = "again"\n',
        "name = 'unterminated\n",
    ],
)
def test_bad_toml(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec(text)
    assert "is not valid TOML" in str(info.value)
    assert "(at " in str(info.value)  # tomllib names the position
    assert info.value.hint == "fix the syntax in modelcycle.toml"


@pytest.mark.parametrize(
    ("task", "metric", "allowed"),
    [
        ("regression", "roc_auc", REGRESSION_METRICS),
        ("classification", "mae", CLASSIFICATION_METRICS),
        (None, "accuracy", REGRESSION_METRICS + CLASSIFICATION_METRICS),
    ],
)
def test_metric_must_fit_the_task(task: str | None, metric: str, allowed: tuple[str, ...]) -> None:
    top = f'metric = "{metric}"' + (f'\ntask = "{task}"' if task else "")
    with pytest.raises(ConfigError) as info:
        parse_spec(_spec(top=top))
    message = str(info.value)
    assert repr(metric) in message
    assert f"use one of {', '.join(allowed)}" in message


@pytest.mark.parametrize(
    ("task", "metric"),
    [("regression", m) for m in REGRESSION_METRICS]
    + [("classification", m) for m in CLASSIFICATION_METRICS],
)
def test_every_listed_metric_is_accepted(task: str, metric: str) -> None:
    spec = parse_spec(_spec(top=f'task = "{task}"\nmetric = "{metric}"'))
    assert spec.resolved_metric(spec.task or "regression") == metric


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('path = "a.csv"\nurl = "sqlite:///x.db"\ntable = "t"', "exactly one of `data.path`"),
        ('delimiter = ";"', "exactly one of `data.path`"),
        ('url = "sqlite:///x.db"', "exactly one of `data.table` or `data.query`"),
        (
            'url = "sqlite:///x.db"\ntable = "t"\nquery = "SELECT 1"',
            "exactly one of `data.table` or `data.query`",
        ),
    ],
)
def test_data_source_shape(data: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse_spec(_spec(data=data))


def test_data_section_is_required() -> None:
    with pytest.raises(ConfigError, match="`data` is required"):
        parse_spec('name = "rent"\ntarget = "rent"\n')


def test_data_source_model_directly() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        DataSource()
    assert DataSource(url="sqlite://", query="SELECT 1").query == "SELECT 1"


@pytest.mark.parametrize(
    ("test_size", "valid_size", "ok"),
    [
        (0.2, 0.2, True),
        (0.4, 0.49, True),
        (0.5, 0.4, False),
        (0.45, 0.45, False),
        (0.0, 0.2, False),
        (0.9, 0.05, False),
    ],
)
def test_split_sizes_leave_room_for_training(test_size: float, valid_size: float, ok: bool) -> None:
    text = _spec(sections=f"[split]\ntest_size = {test_size}\nvalid_size = {valid_size}\n")
    if ok:
        spec = parse_spec(text)
        assert spec.split.test_size + spec.split.valid_size < 0.9
    else:
        with pytest.raises(ConfigError, match=r"split\.test_size"):
            parse_spec(text)


@pytest.mark.parametrize(
    ("top_name", "fragment"),
    [('""', "`name`"), ('"my project"', "`name`"), ('"-x"', "`name`")],
)
def test_project_name_is_checked(top_name: str, fragment: str) -> None:
    text = f'name = {top_name}\ntarget = "rent"\n[data]\npath = "a.csv"\n'
    with pytest.raises(ConfigError, match=fragment):
        parse_spec(text)


def test_missing_required_keys() -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec('name = "rent"\n[data]\npath = "a.csv"\n')
    assert "`target` is required" in str(info.value)


def test_spec_is_frozen() -> None:
    spec = parse_spec(MINIMAL)
    with pytest.raises(ValueError, match="frozen"):
        spec.target = "other"  # type: ignore[misc]


def _project(root: Path, text: str = MINIMAL) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / SPEC_FILENAME).write_text(text, encoding="utf-8")
    return root


def test_load_project_from_explicit_folder(tmp_path: Path) -> None:
    root = _project(tmp_path / "proj")
    project = load_project(root)
    assert project.root == root.resolve()
    assert project.spec_path == root.resolve() / SPEC_FILENAME
    assert project.spec.target == "rent"
    assert project.spec_hash == hashlib.sha256(MINIMAL.encode()).hexdigest()
    assert project.resolve(Path("data/rent.csv")) == root.resolve() / "data" / "rent.csv"
    absolute = tmp_path / "elsewhere.csv"
    assert project.resolve(absolute) == absolute


def test_spec_hash_changes_with_content(tmp_path: Path) -> None:
    first = load_project(_project(tmp_path / "a")).spec_hash
    second = load_project(_project(tmp_path / "b", MINIMAL + "# a comment\n")).spec_hash
    assert first != second


def test_load_project_finds_spec_in_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path / "proj")
    deep = root / "notebooks" / "scratch"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_project_root(deep) == root.resolve()
    project = load_project()
    assert project.root == root.resolve()


def test_find_project_root_prefers_nearest(tmp_path: Path) -> None:
    outer = _project(tmp_path / "outer")
    inner = _project(outer / "inner")
    (inner / "x").mkdir()
    assert find_project_root(inner / "x") == inner.resolve()
    assert find_project_root(outer) == outer.resolve()


def test_find_project_root_none(tmp_path: Path) -> None:
    assert find_project_root(tmp_path) is None


def test_load_project_without_spec_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProjectError) as info:
        load_project()
    assert type(info.value) is ProjectError
    assert SPEC_FILENAME in info.value.message
    assert str(tmp_path.resolve()) in info.value.message or str(tmp_path) in info.value.message
    assert info.value.hint is not None
    assert "modelcycle init" in info.value.hint


def test_load_project_without_spec_in_given_folder(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as info:
        load_project(tmp_path)
    assert str(tmp_path.resolve()) in info.value.message
    assert info.value.hint is not None
    assert f"modelcycle init {tmp_path}" in info.value.hint


def test_load_project_spec_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / SPEC_FILENAME).mkdir()
    with pytest.raises(ProjectError):
        load_project(tmp_path)


def test_non_utf8_spec(tmp_path: Path) -> None:
    tmp_path.joinpath(SPEC_FILENAME).write_bytes(
        MINIMAL.replace("rent", "Mietpreis_ä").encode("cp1252")
    )
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path)
    assert "not UTF-8" in info.value.message
    assert str(tmp_path.resolve() / SPEC_FILENAME) in info.value.message
    assert info.value.hint == "save the file as UTF-8"


def test_invalid_spec_error_names_the_file(tmp_path: Path) -> None:
    _project(tmp_path, _spec(top="tsk = 1"))
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path)
    assert str(tmp_path.resolve() / SPEC_FILENAME) in str(info.value)
    assert "did you mean `task`" in str(info.value)


def test_metric_is_checked_against_the_inferred_task() -> None:
    # no task in the spec: the metric is only checked once the task is inferred from the data
    spec = parse_spec(_spec(top='metric = "roc_auc"'))
    assert spec.resolved_metric("classification") == "roc_auc"
    with pytest.raises(ConfigError, match="does not fit task regression"):
        spec.resolved_metric("regression")


def test_bad_name_and_data_not_a_table_read_plainly() -> None:
    with pytest.raises(ConfigError, match="letters, digits") as bad_name:
        parse_spec(_spec(top="").replace('name = "rent"', 'name = "my project"'))
    assert "pattern" not in str(bad_name.value)
    with pytest.raises(ConfigError, match=r"write \[data\]"):
        parse_spec('name = "x"\ntarget = "y"\ndata = "d.csv"\n')


def test_a_monitoring_schedule_of_zero_is_refused_with_its_key() -> None:
    with pytest.raises(ConfigError, match=r"monitoring\.every") as caught:
        parse_spec(MINIMAL + '\n[monitoring]\nevery = "0s"\n')
    assert "longer than 0" in str(caught.value)
