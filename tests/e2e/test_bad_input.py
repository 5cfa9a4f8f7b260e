"""Every mistake a user can make with the data stage: one clear message, non-zero exit, no trace."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

SPEC = """\
name = "bad"
target = "rent"
{extra}
[data]
{source}
"""
GOOD_ROWS = "\n".join(f"{i},{50 + i},{1000 + 10 * i}" for i in range(40))


def make_project(
    root: Path, data: bytes | None, *, source: str | None = None, extra: str = ""
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if data is not None:
        (root / "data.csv").write_bytes(data)
    (root / "modelcycle.toml").write_text(
        SPEC.format(extra=extra, source=source or 'path = "data.csv"'), encoding="utf-8"
    )
    return root


def _csv(text: str) -> bytes:
    return text.encode()


# (case id, file bytes, spec source, spec extra, command, expected exit, words in the message)
CASES: list[tuple[str, bytes | None, str | None, str, tuple[str, ...], int, tuple[str, ...]]] = [
    ("missing file", None, None, "", ("data", "validate"), 2, ("does not exist",)),
    ("empty file", b"", None, "", ("data", "validate"), 2, ("empty",)),
    ("header only", _csv("id,area,rent\n"), None, "", ("data", "validate"), 2, ("no rows",)),
    ("binary file", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20, None, "", ("data", "validate"), 2,
     ("not a CSV or Parquet",)),
    ("wrong delimiter", _csv("id;area;rent\n1;50;900\n2;60;1000\n"), 'path = "data.csv"\ndelimiter = ","',
     "", ("data", "validate"), 2, ("one column", "delimiter")),
    ("duplicate columns", _csv("id,area,area,rent\n1,2,3,4\n"), None, "", ("data", "validate"), 2,
     ("duplicate column names", "area")),
    ("target absent", _csv("id,area,price\n" + GOOD_ROWS), None, "", ("data", "validate"), 1,
     ("target column 'rent'",)),
    ("target absent, split", _csv("id,area,price\n" + GOOD_ROWS), None, "", ("data", "split"), 2,
     ("target column 'rent'",)),
    ("all-null column", _csv("id,area,rent,notes\n" + "\n".join(f"{r}," for r in GOOD_ROWS.splitlines())),
     None, "", ("data", "validate"), 1, ("'notes' is entirely empty",)),
    ("one-row dataset", _csv("id,area,rent\n1,50,900\n"), None, "", ("data", "validate"), 1, ("1 row",)),
    ("mixed types", _csv("id,area,rent\n" + GOOD_ROWS + "\n41,big,1500\n"), None, "", ("data", "validate"),
     1, ("mixes numbers and text", "'big'")),
    ("sql unreachable", None, 'url = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"\ntable = "t"', "",
     ("data", "validate"), 2, ("cannot read from",)),
    ("sql bad url", None, 'url = "nosuchdb://x"\ntable = "t"', "", ("data", "validate"), 2,
     ("database URL",)),
    ("spec unknown key", _csv("id,area,rent\n" + GOOD_ROWS), None, 'metrc = "mae"', ("data", "validate"), 2,
     ("unknown key `metrc`", "did you mean `metric`")),
    ("spec wrong type", _csv("id,area,rent\n" + GOOD_ROWS), 'path = "data.csv"\n[split]\ntest_size = "big"',
     "", ("data", "split"), 2, ("split.test_size",)),
    ("spec bad toml", _csv("id,area,rent\n" + GOOD_ROWS), None, "target = ", ("data", "validate"), 2,
     ("not valid TOML",)),
    ("spec bad metric", _csv("id,area,rent\n" + GOOD_ROWS), None, 'task = "regression"\nmetric = "f1"',
     ("data", "validate"), 2, ("metric 'f1' does not fit task regression",)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "source", "extra", "command", "code", "words"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES],
)
def test_bad_input_one_clear_message(
    cli: Callable[..., object],
    tmp_path: Path,
    data: bytes | None,
    source: str | None,
    extra: str,
    command: tuple[str, ...],
    code: int,
    words: tuple[str, ...],
) -> None:
    root = make_project(tmp_path / "p", data, source=source, extra=extra)
    run = cli(*command, cwd=root)
    assert run.code == code, run.text  # type: ignore[attr-defined]
    text = " ".join(run.text.split())  # type: ignore[attr-defined]
    for word in words:
        assert word in text, text
    assert "Traceback" not in text
    if code == 2:
        assert text.count("error:") == 1  # one message, with its fix
        assert "hint:" in text


def test_non_utf8_text_is_read_with_a_warning(cli, tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{50 + i},{1000 + i},Café Müller" for i in range(40))
    root = make_project(tmp_path / "p", ("id,area,rent,street\n" + rows).encode("cp1252"))
    run = cli("data", "validate", "--json", cwd=root)
    assert run.code == 0, run.text
    assert "not UTF-8" in run.out


def test_bad_setting_names_the_variable(cli, tmp_path: Path, monkeypatch) -> None:
    root = make_project(tmp_path / "p", _csv("id,area,rent\n" + GOOD_ROWS))
    monkeypatch.setenv("MODELCYCLE_PORT", "abc")
    run = cli("config", "show", cwd=root)
    assert run.code == 2
    assert "MODELCYCLE_PORT" in run.err
    assert "Traceback" not in run.text


def test_no_project_found(cli, tmp_path: Path) -> None:
    run = cli("data", "validate", cwd=tmp_path)
    assert run.code == 2
    assert "no modelcycle.toml" in run.err
    assert "modelcycle init" in run.err


def test_init_refuses_to_overwrite(cli, tmp_path: Path) -> None:
    assert cli("init", str(tmp_path), "--example", "rent", "--rows", "50").code == 0
    run = cli("init", str(tmp_path), "--example", "rent", "--rows", "50")
    assert run.code == 2
    assert "--force" in run.err
    assert cli("init", str(tmp_path), "--example", "rent", "--rows", "50", "--force").code == 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("init", "x", "--example", "rnet"), "unknown example 'rnet'"),
        (("examples", "rent", "--scenario", "inflaton", "--out", "b.csv"), "inflation"),
        (("init", "x", "--data", "d.csv"), "--target"),
    ],
)
def test_bad_options(cli, tmp_path: Path, args: tuple[str, ...], words: str) -> None:
    run = cli(*args, cwd=tmp_path)
    assert run.code == 2, run.text
    assert words in " ".join(run.err.split())
    assert "Traceback" not in run.text


def test_unexpected_error_is_one_line_and_logged(cli, tmp_path: Path, monkeypatch) -> None:
    root = make_project(tmp_path / "p", _csv("id,area,rent\n" + GOOD_ROWS))

    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("modelcycle.data.validation.validate", boom)
    run = cli("data", "validate", cwd=root)
    assert run.code == 1
    assert "unexpected error: RuntimeError: simulated bug" in run.err
    assert "Traceback" not in run.err
    log = (root / "logs" / "modelcycle.log").read_text()
    assert "Traceback" in log
    assert "simulated bug" in log
