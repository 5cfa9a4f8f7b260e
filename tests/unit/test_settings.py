"""Settings: defaults derived from the project, precedence, bad values, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from modelcycle.config.settings import (
    ENV_PREFIX,
    STATE_DIRNAME,
    Settings,
    env_name,
    mask,
    settings_fields,
)
from modelcycle.errors import ConfigError
from modelcycle.scaffold import env_example


def _write_env(project: Path, **values: str) -> None:
    lines = [f"{ENV_PREFIX}{key.upper()}={value}" for key, value in values.items()]
    (project / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_defaults_are_derived_from_project_dir(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path)
    root = tmp_path.resolve()
    state = root / STATE_DIRNAME
    assert settings.project_dir == root
    assert settings.database_url == f"sqlite:///{state / 'modelcycle.db'}"
    assert settings.mlflow_tracking_uri == f"sqlite:///{state / 'mlflow.db'}"
    assert settings.artifact_dir == state / "artifacts"
    assert settings.log_dir == root / "logs"
    assert settings.logs == root / "logs"
    assert settings.state_dir == state
    assert settings.port == 8000
    assert settings.workers == 1
    assert settings.log_format == "text"
    assert settings.predict_api_keys == []


def test_defaults_do_not_depend_on_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    elsewhere = tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = Settings.load(project)
    assert str(project.resolve()) in str(settings.database_url)
    assert str(elsewhere.resolve()) not in str(settings.database_url)
    assert settings.logs.is_relative_to(project.resolve())


def test_project_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELCYCLE_PROJECT_DIR", str(tmp_path))
    _write_env(tmp_path, port="9100")
    settings = Settings.load()
    assert settings.project_dir == tmp_path.resolve()
    assert settings.port == 9100  # the .env of that project was read


def test_relative_dirs_resolve_against_project(tmp_path: Path) -> None:
    _write_env(tmp_path, log_dir="var/log", artifact_dir="store")
    settings = Settings.load(tmp_path)
    assert settings.log_dir == tmp_path.resolve() / "var" / "log"
    assert settings.artifact_dir == tmp_path.resolve() / "store"


def test_environment_beats_dotenv_beats_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_env(tmp_path, port="9001", host="0.0.0.0", log_level="DEBUG")
    monkeypatch.setenv("MODELCYCLE_PORT", "9002")
    settings = Settings.load(tmp_path)
    assert settings.port == 9002
    assert settings.host == "0.0.0.0"
    assert settings.log_level == "DEBUG"
    assert settings.workers == 1

    sources = settings.sources()
    assert sources["port"] == "environment"
    assert sources["host"].startswith(".env")
    assert str(tmp_path / ".env") in sources["host"]
    assert sources["log_level"].startswith(".env")
    assert sources["workers"] == "default"
    assert sources["database_url"] == "derived from MODELCYCLE_PROJECT_DIR"
    assert set(sources) == set(Settings.model_fields)


def test_override_beats_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELCYCLE_PORT", "9002")
    settings = Settings.load(tmp_path, port=9003, host=None)
    assert settings.port == 9003
    assert settings.host == "127.0.0.1"  # None overrides are ignored


def test_given_database_url_is_not_derived(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+psycopg://app@db.example:5432/ops"
    monkeypatch.setenv("MODELCYCLE_DATABASE_URL", url)
    settings = Settings.load(tmp_path)
    assert settings.database_url == url
    assert settings.sources()["database_url"] == "environment"
    assert settings.sources()["mlflow_tracking_uri"] == "derived from MODELCYCLE_PROJECT_DIR"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MODELCYCLE_PORT", "abc"),
        ("MODELCYCLE_PORT", "70000"),
        ("MODELCYCLE_LOG_FORMAT", "xml"),
        ("MODELCYCLE_LOG_LEVEL", "LOUD"),
        ("MODELCYCLE_WORKERS", "0"),
    ],
)
def test_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        Settings.load(tmp_path)
    err = info.value
    assert type(err) is ConfigError
    assert variable in str(err)
    assert repr(value) in str(err)
    assert err.hint is not None
    assert ".env" in err.hint


def test_bad_dotenv_value_names_the_variable(tmp_path: Path) -> None:
    _write_env(tmp_path, workers="many")
    with pytest.raises(ConfigError, match="MODELCYCLE_WORKERS"):
        Settings.load(tmp_path)


def test_unknown_variables_are_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELCYCLE_SOMETHING_ELSE", "1")
    (tmp_path / ".env").write_text("OTHER_TOOL_TOKEN=x\n", encoding="utf-8")
    assert Settings.load(tmp_path).port == 8000


def test_api_keys_split_and_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELCYCLE_PREDICT_API_KEYS", " key-alpha-123 , key-beta-456,, ")
    _write_env(tmp_path, admin_api_keys="admin-secret-789")
    settings = Settings.load(tmp_path)
    assert [k.get_secret_value() for k in settings.predict_api_keys] == [
        "key-alpha-123",
        "key-beta-456",
    ]
    assert [k.get_secret_value() for k in settings.admin_api_keys] == ["admin-secret-789"]

    rows = settings.display()
    text = "\n".join(" ".join(row) for row in rows)
    for raw in ("key-alpha-123", "key-beta-456", "admin-secret-789"):
        assert raw not in text
    shown = {var: value for var, value, _ in rows}
    assert shown["MODELCYCLE_PREDICT_API_KEYS"] == "********, ********"
    assert shown["MODELCYCLE_ADMIN_API_KEYS"] == "********"
    assert "admin-secret-789" not in repr(settings)


def test_display_rows_cover_every_field(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path)
    rows = settings.display()
    assert [var for var, _, _ in rows] == [env_name(n) for n in Settings.model_fields]
    shown = {var: (value, source) for var, value, source in rows}
    assert shown["MODELCYCLE_PREDICT_API_KEYS"] == ("(none)", "default")
    assert shown["MODELCYCLE_PORT"] == ("8000", "default")


def test_display_masks_database_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELCYCLE_DATABASE_URL", "postgresql+psycopg://app:s3cr3t-pw@db:5432/ops")
    shown = {var: value for var, value, _ in Settings.load(tmp_path).display()}
    assert "s3cr3t-pw" not in shown["MODELCYCLE_DATABASE_URL"]
    assert shown["MODELCYCLE_DATABASE_URL"] == "postgresql+psycopg://app:********@db:5432/ops"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("postgresql://user:pa55@host:5432/db", "postgresql://user:********@host:5432/db"),
        # a password holding '@' and ':' is hidden in full
        ("postgresql://user:p@ss:w@host/db", "postgresql://user:********@host/db"),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
        ("sqlite:///tmp/x.db", "sqlite:///tmp/x.db"),
        (SecretStr("tok"), "********"),
        (SecretStr(""), ""),
        ([], "(none)"),
        (8000, "8000"),
    ],
)
def test_mask(value: object, expected: str) -> None:
    assert mask(value) == expected


def test_env_example_lists_every_setting() -> None:
    text = env_example()
    variables = {
        line.removeprefix("# ").split("=", 1)[0]
        for line in text.splitlines()
        if line.startswith(f"# {ENV_PREFIX}")
    }
    assert variables == {env_name(name) for name in Settings.model_fields}
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description for .env.example"
        assert f"# {field.description}" in text
    assert "# MODELCYCLE_PORT=8000" in text
    assert "# MODELCYCLE_LOG_FORMAT=text" in text
    # fields with a computed default show an empty value, not the machine's cwd
    assert "# MODELCYCLE_PROJECT_DIR=\n" in text
    assert str(Path.cwd()) not in text


def test_settings_fields_match_model() -> None:
    rows = settings_fields()
    assert [var for var, _, _ in rows] == [env_name(n) for n in Settings.model_fields]
    defaults = {var: default for var, default, _ in rows}
    assert defaults["MODELCYCLE_WORKERS"] == 1
    assert defaults["MODELCYCLE_DATABASE_URL"] is None


def test_committed_env_example_is_in_sync_with_the_settings() -> None:
    # the repository's .env.example is generated from Settings; regenerate it when a field changes
    from modelcycle.scaffold import env_example

    committed = Path(__file__).resolve().parents[2] / ".env.example"
    assert committed.read_text(encoding="utf-8") == env_example(), (
        "regenerate: python -c 'from modelcycle.scaffold import env_example; "
        'open(".env.example", "w").write(env_example())\''
    )
