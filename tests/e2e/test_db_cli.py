"""``modelcycle db upgrade`` and ``db status``, as a user runs them in a new rent project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelcycle.scaffold import init_project
from modelcycle.store import head_revision


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return init_project(tmp_path / "rent", example="rent", rows=100).root


def test_upgrade_then_status_in_a_new_project(cli, project: Path) -> None:
    db = project / ".modelcycle" / "modelcycle.db"

    before = cli("db", "status", cwd=project)
    assert before.code == 0, before.text
    assert "not created yet" in before.out
    assert "modelcycle db upgrade" in before.out
    assert not db.exists()  # status never creates the database

    first = cli("db", "upgrade", cwd=project)
    assert first.code == 0, first.text
    assert f"to revision {head_revision()} (head)" in first.out
    assert str(db) in first.out
    assert db.is_file()

    again = cli("db", "upgrade", cwd=project)
    assert again.code == 0, again.text
    assert "nothing to do" in again.out

    after = cli("db", "status", cwd=project)
    assert after.code == 0, after.text
    assert "up to date" in after.out
    for table in ("predictions", "labels", "deployments", "deployment_events", "alerts"):
        assert table in after.out

    payload = json.loads(cli("db", "status", "--json", cwd=project).out)
    assert payload["current"] == payload["head"] == head_revision()
    assert payload["up_to_date"] is True
    assert payload["tables"]["predictions"] == 0


def test_database_url_from_the_environment_masks_the_password(
    cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELCYCLE_DATABASE_URL", "postgresql://mc:hunter2@127.0.0.1:1/nothing")
    run = cli("db", "upgrade", cwd=project)
    assert run.code == 2
    assert "hunter2" not in run.text
    assert "mc:********@127.0.0.1:1" in run.err
    assert "hint:" in run.err
    assert "Traceback" not in run.text


def test_database_url_in_dotenv_is_used(cli, project: Path, tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "ops.db"
    (project / ".env").write_text(f"MODELCYCLE_DATABASE_URL=sqlite:///{db}\n", encoding="utf-8")
    run = cli("db", "upgrade", "--json", cwd=project)
    assert run.code == 0, run.text
    assert json.loads(run.out)["after"] == head_revision()
    assert db.is_file()
    assert not (project / ".modelcycle" / "modelcycle.db").exists()
