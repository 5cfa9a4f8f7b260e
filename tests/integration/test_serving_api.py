"""The model server's HTTP API, against real ``modelcycle serve`` processes.

Two servers are started once for the module, in parallel (each start costs seconds):

- ``shared``: default settings, the project's SQLite store, the alias checked every second.
  Predictions, validation, labels, health, metrics, schemathesis and, last, the alias move
  (which moves it back afterwards).
- ``restricted``: API keys, a 2 KiB body limit, a 3-row limit, and the PostgreSQL store (a fresh
  schema) when the server is reachable, else SQLite. API keys, limits, and the PostgreSQL half
  of the logging test.

While they start, the champion's pipeline is registered again as ``rent/2`` in the shared
project, for the alias move.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from modelcycle.config.settings import Settings
from modelcycle.registry.store import load_model, set_alias
from modelcycle.store import make_engine, window

RowsFactory = Callable[..., list[dict[str, Any]]]

PLAIN_KEY = "plain-predict-key-0123456789"
HASHED_KEY = "hashed-predict-key-9876543210"
MAX_BODY_BYTES = 2048
MAX_BATCH_ROWS = 3
JSON = {"content-type": "application/json"}
SERVE = [sys.executable, "-m", "modelcycle", "--project"]

# A clean row with every feature of the rent model.
ROW = {
    "area": 66.4,
    "construction_year": 1978,
    "rooms": 3,
    "bedrooms": 2,
    "bathrooms": 1,
    "balcony": "no",
    "storage": "yes",
    "parking": "no",
    "furnished": "no",
    "garage": "no",
    "garden": "yes",
    "energy": "C",
    "facilities": "dishwasher, central heating",
    "neighborhood": "Noord",
}


# --- module-scoped servers ------------------------------------------------------------------


Server = Any
"""A ``modelcycle serve`` process started for the whole module (conftest's ``ServerProcess``)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELCYCLE_")}
    env.update(extra)
    return env


@dataclass
class Servers:
    shared: Server
    restricted: Server
    restricted_db: str
    """The restricted server's database URL (PostgreSQL when reachable)."""
    second_version: int
    """The version registered in the shared project while the servers started."""


@contextlib.contextmanager
def _postgres_schema(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A URL of a fresh PostgreSQL schema (dropped afterwards), or None without PostgreSQL."""
    try:
        pg_schema = request.getfixturevalue("pg_schema")
    except pytest.skip.Exception:
        yield None
        return
    with pg_schema("mc_serve") as url:
        yield url


@pytest.fixture(scope="module")
def servers(
    request: pytest.FixtureRequest,
    served_project: Path,
    tmp_path_factory: pytest.TempPathFactory,
    launch_server: Callable[..., Server],
    registers: Callable[..., int],
) -> Iterator[Servers]:
    """Both module servers, each on its own copy of the served project, started in parallel."""
    with pytest.MonkeyPatch.context() as env:  # as tests/conftest.py does for each test
        for key in [k for k in os.environ if k.startswith("MODELCYCLE_")]:
            if not key.startswith("MODELCYCLE_TEST_"):
                env.delenv(key)
        yield from _start_servers(
            request, served_project, tmp_path_factory, launch_server, registers
        )


def _start_servers(
    request: pytest.FixtureRequest,
    served_project: Path,
    tmp_path_factory: pytest.TempPathFactory,
    launch: Callable[..., Server],
    registers: Callable[..., int],
) -> Iterator[Servers]:
    projects = []
    for name in ("shared", "restricted"):
        target = tmp_path_factory.mktemp(f"api-{name}") / "rent"
        shutil.copytree(served_project, target)
        projects.append(target)
    digest = hashlib.sha256(HASHED_KEY.encode()).hexdigest()
    with _postgres_schema(request) as pg_url, ThreadPoolExecutor(1) as pool:
        restricted_db = pg_url or _database_url(projects[1])
        shared = launch(
            projects[0], projects[0].parent, env={"MODELCYCLE_MODEL_POLL_SECONDS": "1"}, wait=False
        )
        restricted = launch(
            projects[1],
            projects[1].parent,
            env={
                "MODELCYCLE_MODEL_POLL_SECONDS": "0",
                "MODELCYCLE_DATABASE_URL": restricted_db,
                "MODELCYCLE_PREDICT_API_KEYS": f"{PLAIN_KEY}, sha256:{digest}",
                "MODELCYCLE_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
                "MODELCYCLE_MAX_BATCH_ROWS": str(MAX_BATCH_ROWS),
            },
            wait=False,
        )
        second = pool.submit(registers, projects[0])
        try:
            shared.wait_ready(120)
            restricted.wait_ready(120)
            yield Servers(shared, restricted, restricted_db, second.result())
        finally:
            shared.stop()
            restricted.stop()


@pytest.fixture(scope="module")
def shared(servers: Servers) -> Server:
    return servers.shared


@pytest.fixture(scope="module")
def restricted(servers: Servers) -> Server:
    return servers.restricted


@pytest.fixture
def api(shared: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared.url, timeout=30) as client:
        yield client


# --- helpers --------------------------------------------------------------------------------


def _tracking_uri(project: Path) -> str:
    uri = Settings.load(project).mlflow_tracking_uri
    assert uri is not None
    return uri


def _database_url(project: Path) -> str:
    url = Settings.load(project).database_url
    assert url is not None
    return url


def _rows_with_gaps(rent_rows: RowsFactory, n: int, seed: int) -> list[dict[str, Any]]:
    """Clean rows where some optional features are null or left out."""
    rows = rent_rows(n, seed)
    rows[1]["area"] = None
    rows[2]["energy"] = None
    rows[3]["bathrooms"] = None
    del rows[4]["parking"]
    return rows


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The JSON error body of a response that must have ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("error"), str), body
    assert body["error"], body
    return body


def _logged(db_url: str, request_ids: set[str], expected: int, timeout: float = 20) -> pd.DataFrame:
    """The logged predictions of ``request_ids``, once at least ``expected`` rows are stored."""
    engine = make_engine(db_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                frame = window(conn, "rent")
            mine = frame[frame["request_id"].isin(request_ids)]
            if len(mine) >= expected or time.monotonic() > deadline:
                return mine.reset_index(drop=True)
            time.sleep(0.1)
    finally:
        engine.dispose()


def _metrics(url: str) -> list[Sample]:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(response.text) for s in family.samples]


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def _names(samples: list[Sample]) -> set[str]:
    return {s.name for s in samples}


# --- 1. predictions and request ids ---------------------------------------------------------


def test_predictions_equal_the_registered_model(
    shared: Server, api: httpx.Client, rent_rows: RowsFactory
) -> None:
    rows = _rows_with_gaps(rent_rows, 12, seed=5)
    model = load_model("rent@champion", tracking_uri=_tracking_uri(shared.project))
    expected = model.predict(pd.DataFrame(rows))["prediction"].to_numpy(dtype="float64")
    assert len(np.unique(expected.round(6))) > 6  # distinct rows, distinct predictions

    one = api.post("/predict", json=rows[0])
    assert one.status_code == 200, one.text
    body = one.json()
    assert set(body) == {"request_id", "model", "version", "arm", "predictions", "ood"}
    assert (body["model"], body["version"], body["arm"]) == ("rent", "1", "stable")
    np.testing.assert_allclose(body["predictions"], expected[:1], rtol=1e-9)

    many = api.post("/predict", json=rows)
    assert many.status_code == 200, many.text
    assert len(many.json()["predictions"]) == len(rows)
    np.testing.assert_allclose(many.json()["predictions"], expected, rtol=1e-9)

    # a row with gaps predicts the same alone as inside a batch
    alone = api.post("/predict", json=rows[4])
    np.testing.assert_allclose(alone.json()["predictions"], expected[4:5], rtol=1e-9)


def test_request_ids_round_trip_and_generated_ids_are_unique(
    api: httpx.Client, rent_rows: RowsFactory
) -> None:
    row = rent_rows(1)[0]
    given = f"client-{uuid.uuid4().hex[:8]}.retry:1"
    echoed = api.post("/predict", json=row, headers={"X-Request-ID": given})
    assert echoed.status_code == 200
    assert echoed.headers["x-request-id"] == given
    assert echoed.json()["request_id"] == given

    generated = []
    for _ in range(20):
        response = api.post("/predict", json=row)
        assert response.status_code == 200
        assert response.headers["x-request-id"] == response.json()["request_id"]
        generated.append(response.json()["request_id"])
    assert len(set(generated)) == len(generated)
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in generated)

    # an unusable id (spaces, too long) is replaced, not echoed
    for bad in ("has spaces in it", "x" * 129):
        response = api.post("/predict", json=row, headers={"X-Request-ID": bad})
        assert response.status_code == 200
        assert response.json()["request_id"] != bad
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])

    # errors carry the id too
    failed = api.post("/predict", json={}, headers={"X-Request-ID": "failed-1"})
    assert failed.status_code == 422
    assert failed.headers["x-request-id"] == "failed-1"


# --- 2. every predicted row is logged -------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def logging_target(request: pytest.FixtureRequest, servers: Servers) -> tuple[Server, str]:
    """A server and the database it logs to: SQLite (shared) or PostgreSQL (restricted)."""
    if request.param == "sqlite":
        return servers.shared, _database_url(servers.shared.project)
    request.getfixturevalue("postgres_url")  # skips (or fails) as every PostgreSQL test does
    assert servers.restricted_db.startswith("postgresql"), servers.restricted_db
    return servers.restricted, servers.restricted_db


def test_every_predicted_row_is_logged_exactly_once(
    logging_target: tuple[Server, str], rent_rows: RowsFactory
) -> None:
    server, db_url = logging_target
    rows = rent_rows(10, seed=11)
    headers = {"X-API-Key": PLAIN_KEY}  # the restricted server needs it; ignored by the other
    prefix = f"log-{uuid.uuid4().hex[:8]}"
    sent: dict[str, tuple[list[dict[str, Any]], list[float]]] = {}
    start = 0
    with httpx.Client(base_url=server.url, timeout=30, headers=headers) as client:
        for i, n in enumerate([1, 3, 1, 2, 3]):
            chunk, start = rows[start : start + n], start + n
            rid = f"{prefix}-{i}"
            response = client.post(
                "/predict", json=chunk[0] if n == 1 else chunk, headers={"X-Request-ID": rid}
            )
            assert response.status_code == 200, response.text
            sent[rid] = (chunk, response.json()["predictions"])

    logged = _logged(db_url, set(sent), expected=len(rows))
    assert len(logged) == len(rows), logged[["request_id", "row"]]
    assert not logged.duplicated(["request_id", "row"]).any()
    assert set(logged["model_name"]) == {"rent"}
    assert set(logged["model_version"]) == {"1"}
    assert set(logged["arm"]) == {"stable"}
    assert (logged["latency_ms"] >= 0).all()
    for rid, (chunk, predictions) in sent.items():
        mine = logged[logged["request_id"] == rid].sort_values("row")
        assert mine["row"].tolist() == list(range(len(chunk)))
        assert mine["features"].tolist() == chunk
        np.testing.assert_allclose(mine["prediction"].to_numpy(float), predictions, rtol=1e-12)


# --- 3. validation --------------------------------------------------------------------------


def _body(row: dict[str, Any], **changes: Any) -> bytes:
    return json.dumps({**row, **changes}).encode()


def _without(row: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != name}


# (body, status, fragments of the error message, expected problems as (row, field, reason))
INVALID: dict[str, tuple[bytes, int, list[str], list[tuple[Any, Any, str]]]] = {
    "missing required": (
        json.dumps(_without(ROW, "rooms")).encode(),
        422,
        ["'rooms'", "missing required feature"],
        [(0, "rooms", "missing required feature")],
    ),
    "string for a number": (
        _body(ROW, area="big"),
        422,
        ["'area'", "expected a number", "'big'"],
        [(0, "area", "expected a number or null, got 'big'")],
    ),
    "boolean for a number": (
        _body(ROW, rooms=True),
        422,
        ["'rooms'", "expected a number, got True"],
        [(0, "rooms", "expected a number, got True")],
    ),
    "null for a required feature": (
        _body(ROW, rooms=None),
        422,
        ["'rooms'", "expected a number"],
        [(0, "rooms", "expected a number, got None")],
    ),
    "number for a category": (
        _body(ROW, balcony=1),
        422,
        ["'balcony'", "expected a string"],
        [(0, "balcony", "expected a string, got 1")],
    ),
    "unknown feature": (
        json.dumps({**_without(ROW, "rooms"), "romos": 3}).encode(),
        422,
        ["'romos'", "did you mean 'rooms'?"],
        [(0, "rooms", "missing required feature"), (0, "romos", "did you mean 'rooms'?")],
    ),
    "second row of a list": (
        json.dumps([ROW, {**ROW, "bedrooms": "two"}]).encode(),
        422,
        ["row 1", "'bedrooms'"],
        [(1, "bedrooms", "expected a number, got 'two'")],
    ),
    "NaN": (_body(ROW, area=float("nan")), 400, ["not valid JSON"], []),
    "Infinity": (_body(ROW, area=float("inf")), 400, ["not valid JSON"], []),
    "huge number": (
        _body(ROW).replace(b"66.4", b"1e400"),
        400,
        ["not valid JSON", "infinity"],
        [],
    ),
    "empty body": (b"", 400, ["body is empty"], []),
    "blank body": (b" \n ", 400, ["body is empty"], []),
    "invalid JSON": (b'{"area": 66.4,', 400, ["not valid JSON"], []),
    "empty list": (b"[]", 422, ["non-empty list"], [(None, None, "non-empty list")]),
    "list of non-objects": (
        b'[1, "two"]',
        422,
        ["row 0", "expected an object of features"],
        [(0, None, "expected an object"), (1, None, "expected an object")],
    ),
    "a bare string": (b'"rooms"', 422, ["expected one object of features"], []),
    "null": (b"null", 422, ["expected one object of features"], []),
}


@pytest.mark.parametrize("case", list(INVALID), ids=list(INVALID))
def test_invalid_requests_get_a_clear_error(api: httpx.Client, case: str) -> None:
    payload, status, fragments, problems = INVALID[case]
    body = _error(api.post("/predict", content=payload, headers=JSON), status)
    for fragment in fragments:
        assert fragment in body["error"], body
    assert body.get("hint"), body
    if status == 422:
        got = body["problems"]
        assert len(got) == len(problems) or not problems, got
        for (row, name, reason), problem in zip(problems, got, strict=False):
            assert (problem["row"], problem["field"]) == (row, name), got
            assert reason in problem["reason"], got


def test_unseen_values_are_accepted(api: httpx.Client) -> None:
    """Out-of-range numbers and unseen categories are monitoring's business, not errors."""
    rows = [
        {**ROW, "area": 99_999.0},
        {**ROW, "neighborhood": "Atlantis", "energy": "Z"},
        {**ROW, "rooms": 0, "construction_year": 1200},
    ]
    response = api.post("/predict", json=rows)
    assert response.status_code == 200, response.text
    assert all(np.isfinite(response.json()["predictions"]))


def test_columns_that_are_not_inputs_are_ignored(api: httpx.Client) -> None:
    """The data's other columns (the target, the address) may be sent; they change nothing."""
    plain = api.post("/predict", json=ROW)
    extra = api.post("/predict", json={**ROW, "rent": 99_999, "address": "Main St 1", "zip": "1"})
    assert extra.status_code == 200, extra.text
    assert extra.json()["predictions"] == plain.json()["predictions"]


MLFLOW_INVALID: dict[str, tuple[Any, int, str]] = {
    "two input fields": ({"dataframe_split": {}, "dataframe_records": []}, 400, "exactly one"),
    "null instances": ({"instances": None}, 400, "cannot be read as a table"),
    "a scalar": ({"inputs": 5}, 400, "cannot be read as a table"),
    "no rows": ({"dataframe_records": []}, 400, "no rows"),
    "invalid feature": ({"dataframe_records": [{**ROW, "rooms": "x"}]}, 422, "'rooms'"),
}


@pytest.mark.parametrize("case", list(MLFLOW_INVALID), ids=list(MLFLOW_INVALID))
def test_mlflow_invocations_refuse_bad_payloads_clearly(api: httpx.Client, case: str) -> None:
    """Regression: these answered 500 (an error detail named ``message``; a 0-d frame)."""
    payload, status, fragment = MLFLOW_INVALID[case]
    body = _error(api.post("/invocations", json=payload), status)
    assert fragment in body["error"], body
    assert body["error_code"] == "BAD_REQUEST"


def test_mlflow_invocations_agree_with_predict(api: httpx.Client) -> None:
    native = api.post("/predict", json=ROW).json()["predictions"]
    mlflow = api.post("/invocations", json={"dataframe_records": [ROW]})
    assert mlflow.status_code == 200, mlflow.text
    [record] = mlflow.json()["predictions"]
    assert record["prediction"] == pytest.approx(native[0], rel=1e-9)


def test_limits_refuse_big_bodies_and_batches(restricted: Server, rent_rows: RowsFactory) -> None:
    auth = {"Authorization": f"Bearer {PLAIN_KEY}", **JSON}
    rows = rent_rows(12, seed=2)
    too_big = json.dumps(rows[:8]).encode()
    assert len(too_big) > MAX_BODY_BYTES
    over_rows = json.dumps(rows[: MAX_BATCH_ROWS + 1]).encode()
    assert len(over_rows) < MAX_BODY_BYTES
    with httpx.Client(base_url=restricted.url, timeout=30) as client:
        declared = _error(client.post("/predict", content=too_big, headers=auth), 413)
        assert "2,048 bytes" in declared["error"]
        assert "MODELCYCLE_MAX_BODY_BYTES" in declared["hint"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
            for start in range(0, len(too_big), 512):
                yield too_big[start : start + 512]

        streamed = _error(client.post("/predict", content=chunks(), headers=auth), 413)
        assert "2,048 bytes" in streamed["error"]

        batch = _error(client.post("/predict", content=over_rows, headers=auth), 413)
        assert f"{MAX_BATCH_ROWS + 1} rows" in batch["error"]
        assert f"the limit is {MAX_BATCH_ROWS}" in batch["error"]
        assert "MODELCYCLE_MAX_BATCH_ROWS" in batch["hint"]

        at_limit = client.post("/predict", json=rows[:MAX_BATCH_ROWS], headers=auth)
        assert at_limit.status_code == 200, at_limit.text
        assert len(at_limit.json()["predictions"]) == MAX_BATCH_ROWS


# --- 4. labels ------------------------------------------------------------------------------


def test_labels_are_inserted_deduplicated_updated_and_checked(
    shared: Server, api: httpx.Client, rent_rows: RowsFactory
) -> None:
    rid = f"lab-{uuid.uuid4().hex[:10]}"
    predicted = api.post("/predict", json=rent_rows(2, seed=3), headers={"X-Request-ID": rid})
    assert predicted.status_code == 200

    # right after the prediction: the server flushes its log before storing labels
    label = {"request_id": rid, "row": 0, "label": 1234.5, "source": "tests"}
    first = api.post("/labels", json=label)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "counts": {"inserted": 1},
        "results": [{"request_id": rid, "row": 0, "status": "inserted"}],
    }
    again = api.post("/labels", json=label)
    assert again.json()["counts"] == {"duplicate": 1}
    changed = api.post("/labels", json={**label, "label": 1300})
    assert changed.json()["results"] == [{"request_id": rid, "row": 0, "status": "updated"}]

    mixed = api.post(
        "/feedback",
        json={
            "labels": [
                {"request_id": rid, "row": 1, "label": 999},
                {"request_id": f"nope-{rid}", "row": 0, "label": 1},
                {"request_id": rid, "row": 2, "label": 1},  # the request had two rows
            ]
        },
    )
    assert mixed.status_code == 200, mixed.text
    assert mixed.json()["counts"] == {"inserted": 1, "unknown": 2}
    assert [r["status"] for r in mixed.json()["results"]] == ["inserted", "unknown", "unknown"]
    as_list = api.post("/labels", json=[{"request_id": rid, "row": 1, "label": 999}])
    assert as_list.json()["counts"] == {"duplicate": 1}

    engine = make_engine(_database_url(shared.project))
    try:
        with engine.connect() as conn:
            frame = window(conn, "rent", with_features=False)
    finally:
        engine.dispose()
    mine = frame[frame["request_id"] == rid].sort_values("row")
    assert mine["label"].tolist() == [1300.0, 999.0]
    assert mine["label_source"].iloc[0] == "tests"
    assert pd.isna(mine["label_source"].iloc[1])


BAD_LABELS: dict[str, tuple[bytes, int, str, str | None]] = {
    "no label": (b'{"request_id": "r1", "row": 0}', 422, "label", "Field required"),
    "negative row": (b'{"request_id": "r1", "row": -1, "label": 1}', 422, "row", "greater"),
    "empty request id": (b'{"request_id": "", "label": 1}', 422, "request_id", "at least 1"),
    "unknown field": (b'{"request_id": "r1", "label": 1, "lable": 2}', 422, "lable", None),
    "bad timestamp": (
        b'{"request_id": "r1", "label": 1, "timestamp": "yesterday"}',
        422,
        "timestamp",
        None,
    ),
    "list label": (b'{"request_id": "r1", "label": [1]}', 422, "label", None),
    "not an object": (b"[1]", 422, "item 0", None),
    "no labels": (b'{"labels": []}', 422, "no labels given", None),
    "invalid JSON": (b'{"request_id": ', 400, "not valid JSON", None),
    "empty body": (b"", 400, "body is empty", None),
}


@pytest.mark.parametrize("case", list(BAD_LABELS), ids=list(BAD_LABELS))
def test_bad_label_payloads_are_refused_clearly(api: httpx.Client, case: str) -> None:
    payload, status, fragment, reason = BAD_LABELS[case]
    body = _error(api.post("/labels", content=payload, headers=JSON), status)
    assert fragment in body["error"], body
    assert body.get("hint"), body
    if reason is not None:
        assert any(fragment == p["field"] and reason in p["reason"] for p in body["problems"])


# --- 5. API keys ----------------------------------------------------------------------------


def test_api_keys_guard_predictions_and_labels(restricted: Server, rent_rows: RowsFactory) -> None:
    row = rent_rows(1)[0]
    digest = hashlib.sha256(HASHED_KEY.encode()).hexdigest()
    with httpx.Client(base_url=restricted.url, timeout=30) as client:
        missing = _error(client.post("/predict", json=row), 401)
        assert "needs a predict API key" in missing["error"]
        assert "Authorization: Bearer" in missing["error"]
        for headers in (
            {"Authorization": "Bearer not-the-key"},
            {"X-API-Key": "not-the-key"},
            {"Authorization": f"Bearer sha256:{digest}"},  # the digest is not the key
            {"Authorization": f"Bearer {PLAIN_KEY[:-1]}"},
        ):
            wrong = _error(client.post("/predict", json=row, headers=headers), 401)
            assert "not valid" in wrong["error"]
        for headers in (
            {"Authorization": f"Bearer {PLAIN_KEY}"},
            {"authorization": f"bearer {PLAIN_KEY}"},
            {"X-API-Key": PLAIN_KEY},
            {"Authorization": f"Bearer {HASHED_KEY}"},  # configured as sha256:<hex>
            {"X-API-Key": HASHED_KEY},
        ):
            response = client.post("/predict", json=row, headers=headers)
            assert response.status_code == 200, (headers, response.text)

        label = {"request_id": "no-such-request", "label": 1}
        for route in ("/labels", "/feedback"):
            _error(client.post(route, json=label), 401)
            allowed = client.post(route, json=label, headers={"X-API-Key": PLAIN_KEY})
            assert allowed.json()["counts"] == {"unknown": 1}
        _error(client.post("/invocations", json={"dataframe_records": [row]}), 401)

        # health, metrics, model info and the API description stay open
        for path in ("/health/live", "/health/ready", "/metrics", "/models", "/openapi.json"):
            assert client.get(path).status_code == 200, path


# --- 6. health, models, start-up failures ---------------------------------------------------


def test_health_and_models_describe_the_loaded_model(api: httpx.Client) -> None:
    assert api.get("/health/live").json() == {"status": "live"}
    ready = api.get("/health/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert (body["status"], body["model"], body["version"]) == ("ready", "rent", "1")
    assert body["log"]["database_ok"] is True

    models = api.get("/models").json()
    assert (models["ref"], models["ready"]) == ("rent@champion", True)
    [info] = models["models"]
    assert (info["name"], info["version"], info["arm"]) == ("rent", "1", "stable")
    assert "champion" in info["aliases"]
    assert (info["task"], info["metric"], info["candidate"]) == ("regression", "mae", "lgbm")
    features = {f["name"]: f for f in info["features"]}
    assert set(features) == set(ROW)
    assert features["rooms"]["required"] is True
    assert features["rooms"]["kind"] == "numeric"
    assert features["area"]["required"] is False
    assert features["neighborhood"]["kind"] == "categorical"


def test_openapi_names_every_feature(api: httpx.Client) -> None:
    schema = api.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    assert {"RentFeatures", "PredictRequest", "LabelRecord"} <= set(components)
    features = components["RentFeatures"]
    inputs = {
        name
        for name, p in features["properties"].items()
        if "Not a model input" not in p.get("description", "")
    }
    assert inputs == set(ROW)
    assert features["additionalProperties"] is False
    assert "rooms" in features["required"]
    assert "area" not in features["required"]
    assert features["properties"]["rooms"]["type"] == "number"
    assert "required" in features["properties"]["rooms"]["description"]
    predict = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert predict["schema"] == {"$ref": "#/components/schemas/PredictRequest"}
    assert set(components["LabelRecord"]["required"]) == {"request_id", "label"}


def test_serve_fails_fast_on_an_unknown_model(shared: Server) -> None:
    command = [*SERVE, str(shared.project), "serve"]
    done = subprocess.run(
        [*command, "--model", "rent/99", "--port", str(_free_port())],
        check=False,
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert "'rent'" in errors[0]
    assert "99" in errors[0]
    assert "versions: 1" in errors[0]
    assert "Serving" not in output


def test_ready_is_503_until_a_model_is_loaded(project_copy: Path) -> None:
    """A server whose model cannot be loaded answers, but says why it is not ready.

    The CLI refuses such a model before starting (above), so this runs the app in process,
    start-up and shutdown included.
    """
    from modelcycle.serving.app import create_app

    app = create_app(Settings.load(project_copy), "rent/99")

    async def calls() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://app") as client,
        ):
            return {
                "live": await client.get("/health/live"),
                "ready": await client.get("/health/ready"),
                "models": await client.get("/models"),
                "predict": await client.post("/predict", json=ROW),
            }

    try:  # on a thread of its own: a session's Playwright browser keeps a loop on this one
        with ThreadPoolExecutor(1) as pool:
            answers = pool.submit(asyncio.run, calls()).result()
    finally:
        gc.unfreeze()  # the app's start-up froze the test process's objects
    assert answers["live"].status_code == 200
    ready = answers["ready"]
    assert ready.status_code == 503
    assert ready.json()["status"] == "failed"
    assert "99" in ready.json()["reason"]
    assert answers["models"].json()["ready"] is False
    assert answers["models"].json()["models"] == []
    predict = _error(answers["predict"], 503)
    assert "not ready" in predict["error"]
    assert "/health/ready" in predict["hint"]


# --- 7. metrics -----------------------------------------------------------------------------


def test_metrics_count_requests_rows_and_values(
    shared: Server, api: httpx.Client, rent_rows: RowsFactory
) -> None:
    stable = {"model": "rent", "version": "1", "arm": "stable"}
    before = _metrics(shared.url)
    one = api.post("/predict", json=rent_rows(1, seed=8)[0])
    three = api.post("/predict", json=rent_rows(3, seed=9))
    invalid = api.post("/predict", json={**ROW, "rooms": "three"})
    assert (one.status_code, three.status_code, invalid.status_code) == (200, 200, 422)
    predicted = one.json()["predictions"] + three.json()["predictions"]
    after = _metrics(shared.url)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    ok = {"route": "/predict", "status": "200", **stable}
    assert delta("modelcycle_requests_total", **ok) == 2
    # an invalid request is attributed to the version that would have answered it, so a
    # deployment can compare error rates per version and arm
    assert delta("modelcycle_requests_total", route="/predict", status="422", **stable) == 1
    route = {"route": "/predict", **stable}
    assert delta("modelcycle_request_latency_seconds_count", **route) == 3
    assert delta("modelcycle_request_latency_seconds_sum", **route) > 0
    assert delta("modelcycle_predicted_rows_total", **stable) == 4
    assert delta("modelcycle_prediction_value_count", **stable) == 4
    assert delta("modelcycle_prediction_value_sum", **stable) == pytest.approx(sum(predicted))
    buckets = {s.labels["le"] for s in after if s.name == "modelcycle_prediction_value_bucket"}
    assert len(buckets) > 3  # from the training target's quantiles, not just +Inf
    assert _value(after, "modelcycle_model_loaded", **stable) == 1

    names = _names(after)
    for gauge in (
        "modelcycle_log_queue_depth",
        "modelcycle_log_spooled_records",
        "modelcycle_log_dropped_records_total",
    ):
        assert gauge in names
        assert _value(after, gauge) >= 0
    assert _value(after, "modelcycle_log_dropped_records_total") == 0


# --- 8. fuzzing the OpenAPI document --------------------------------------------------------


def test_schemathesis_finds_no_server_errors(shared: Server, tmp_path: Path) -> None:
    runner = Path(sys.executable).with_name("schemathesis")
    assert runner.exists(), runner
    command = [str(runner), "run", f"{shared.url}/openapi.json"]
    command += ["--checks", "not_a_server_error", "--max-examples", "30", "--seed", "0"]
    command += ["--no-shrink", "--request-timeout", "30"]
    done = subprocess.run(
        command,
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**_clean_env(), "NO_COLOR": "1"},
        timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    tested = re.search(r"Tested:\s*(\d+)", output)
    assert tested is not None, output[-3000:]
    assert int(tested.group(1)) >= 7, output[-3000:]

    # and the server saw no 5xx either
    statuses = {
        s.labels["status"] for s in _metrics(shared.url) if s.name == "modelcycle_requests_total"
    }
    assert not {s for s in statuses if s.startswith("5")}, statuses
    assert "internal error" not in shared.output()


# --- 9. alias moves (last: they change the shared server) -----------------------------------


@dataclass
class Traffic:
    """One client thread posting ``/predict`` until stopped, recording every outcome."""

    url: str
    row: dict[str, Any]
    prefix: str = field(default_factory=lambda: f"alias-{uuid.uuid4().hex[:8]}")
    results: list[tuple[str, int, str | None]] = field(default_factory=list)
    """(request id, status, version) of every answered request."""
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for i in itertools.count():
                if self._stop.is_set():
                    return
                rid = f"{self.prefix}-{i}"
                try:
                    response = client.post("/predict", json=self.row, headers={"X-Request-ID": rid})
                except httpx.HTTPError as err:
                    self.errors.append(repr(err))
                    continue
                ok = response.status_code == 200
                version = response.json()["version"] if ok else None
                self.results.append((rid, response.status_code, version))

    def last_version(self) -> str | None:
        return self.results[-1][2] if self.results else None

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30) -> float:
        """Seconds until ``condition`` held (fails after ``timeout``)."""
        start = time.monotonic()
        while not condition():
            assert time.monotonic() - start < timeout, (self.results[-5:], self.errors)
            assert self._thread is not None
            assert self._thread.is_alive(), self.errors
            time.sleep(0.05)
        return time.monotonic() - start

    def more(self, n: int) -> None:
        """Wait for ``n`` more answers."""
        target = len(self.results) + n
        self.wait_for(lambda: len(self.results) >= target)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)


def test_alias_moves_switch_the_version_without_failing_requests(
    servers: Servers, shared: Server
) -> None:
    """Runs last: it moves the shared server's champion to version 2 and back (a rollback)."""
    uri = _tracking_uri(shared.project)
    assert servers.second_version == 2
    traffic = Traffic(shared.url, ROW).start()
    try:
        traffic.more(5)
        assert traffic.last_version() == "1"
        set_alias("rent", 2, "champion", tracking_uri=uri)
        forward = traffic.wait_for(lambda: traffic.last_version() == "2")
        traffic.more(5)
        ready = httpx.get(f"{shared.url}/health/ready", timeout=10).json()
        [info] = httpx.get(f"{shared.url}/models", timeout=10).json()["models"]
        loaded = _metrics(shared.url)

        set_alias("rent", 1, "champion", tracking_uri=uri)
        back = traffic.wait_for(lambda: traffic.last_version() == "1")
        traffic.more(5)
    finally:
        traffic.stop()

    assert traffic.errors == []
    assert {status for _, status, _ in traffic.results} == {200}
    versions = [version for _, _, version in traffic.results]
    runs = [v for i, v in enumerate(versions) if i == 0 or v != versions[i - 1]]
    assert runs == ["1", "2", "1"]  # each switch happens once, with no flapping in between
    assert forward < 15, f"the move to version 2 took {forward:.1f} s"
    assert back < 15, f"the rollback to version 1 took {back:.1f} s"

    assert ready["version"] == "2"
    assert info["version"] == "2"
    assert "champion" in info["aliases"]
    assert _value(loaded, "modelcycle_model_loaded", version="2") == 1
    assert _value(loaded, "modelcycle_model_loaded", version="1") == 0

    # each request was logged under the version that answered it
    answered = {rid: version for rid, _, version in traffic.results}
    logged = _logged(_database_url(shared.project), set(answered), expected=len(answered))
    assert len(logged) == len(answered)
    assert dict(zip(logged["request_id"], logged["model_version"], strict=True)) == answered


def test_predict_returns_and_logs_ood_per_row(shared: Server) -> None:
    """The trained bundle carries an OOD detector: each row gets a verdict, returned and logged."""
    odd = dict(ROW, area=float(str(ROW["area"])) * 40)
    rid = f"ood-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=shared.url, timeout=30) as client:
        response = client.post("/predict", json=[ROW, odd], headers={"X-Request-ID": rid})
    assert response.status_code == 200, response.text
    ood = response.json()["ood"]
    assert len(ood) == len(response.json()["predictions"]) == 2
    assert {tuple(sorted(v)) for v in ood} == {("flag", "reasons", "score")}
    assert ood[1]["flag"] is True
    assert "area: out of range" in ood[1]["reasons"]
    assert 0 < ood[0]["score"] <= 1

    logged = _logged(_database_url(shared.project), {rid}, expected=2).sort_values("row")
    assert logged["ood"].tolist() == ood
