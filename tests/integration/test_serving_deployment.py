"""The model server routes by the deployment state: real servers, a real SQLite store, real MLflow.

Deployment commands run in this process against the project's stores (as ``modelcycle deploy``
does); the server under test notices the change through the state's version counter and swaps
its routing table. One server (deployment poll at its default, 1 s; the in-server rollout
controller off, so only the tests' commands move a rollout) serves every routing test; each test
first brings the deployment back to v1 alone. Extra versions are registered once, without
training:

- ``rent/2``: v1's pipeline again (same predictions; a good candidate);
- ``rent/3``: v1's pipeline with a guard that raises on any numeric input above ~1e154 (a bad
  candidate that passes its smoke test and fails on a share of live requests);
- ``rent/4``: predicts NaN (cannot be warmed: the rollout must be marked failed);
- ``rent/5``: refuses unseen categories (fails its smoke test: the rollout must be marked failed).
"""

from __future__ import annotations

import copy
import itertools
import json
import shutil
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
from sklearn.dummy import DummyRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sqlalchemy.engine import Engine

from modelcycle.config.settings import Settings
from modelcycle.data.examples import rent_apartments
from modelcycle.deployment import commands
from modelcycle.deployment.state import DeploymentError, DeploymentState, Event, RolloutPlan
from modelcycle.deployment.strategies import bucket
from modelcycle.registry.store import load_model, resolve_version
from modelcycle.store import make_engine, upgrade, window

pytestmark = pytest.mark.slow

SAME, RAISES, NAN, STRICT = "2", "3", "4", "5"
HUGE = 1e200
"""A finite area the server accepts; v3's guard raises on it (its square overflows)."""
ADMIN_KEY = "admin-key-0123456789abcdef"
PREDICT_KEY = "predict-key-0123456789abcdef"


# --- versions, projects, stores ---------------------------------------------------------------


def _rows(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` clean rent rows with the model's input features (as the ``rent_rows`` fixture)."""
    frame = rent_apartments(n, seed=seed, messy=False).drop(
        columns=["rent", "address", "zip"], errors="ignore"
    )
    rows: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return rows


def _raising(pipeline: Pipeline) -> Pipeline:
    """v1's pipeline with ``square → finite check → sqrt`` before the numeric imputer.

    For the non-negative rent features ``sqrt(x * x) == x`` exactly, so predictions are v1's;
    a value above ~1.3e154 squares to infinity and the check (a no-op StandardScaler, which
    refuses infinity) raises ValueError. The smoke test's rows stay far below that.
    """
    bad = copy.deepcopy(pipeline)
    preprocess = bad.named_steps["preprocess"]
    name, numeric, names = preprocess.transformers_[0]
    assert name == "numeric", preprocess.transformers_
    sample = pd.DataFrame(_rows(20))[names].astype("float64")
    guard = StandardScaler(with_mean=False, with_std=False).set_output(transform="pandas")
    steps = [
        ("square", FunctionTransformer(np.square).fit(sample)),
        ("finite", guard.fit(sample)),
        ("root", FunctionTransformer(np.sqrt).fit(sample)),
        *numeric.steps,
    ]
    preprocess.transformers_[0] = (name, Pipeline(steps), names)
    return bad


def _nan(pipeline: Pipeline) -> Pipeline:
    """v1's preprocessing with a final estimator that predicts NaN."""
    bad = copy.deepcopy(pipeline)
    dummy = DummyRegressor().fit(np.zeros((2, 1)), [1.0, 2.0])
    dummy.constant_ = np.array([[np.nan]])
    bad.steps[-1] = ("model", dummy)
    return bad


def _strict(pipeline: Pipeline) -> Pipeline:
    """v1's pipeline whose one-hot encoder raises on unseen categories."""
    bad = copy.deepcopy(pipeline)
    preprocess = bad.named_steps["preprocess"]
    [onehot] = [t for n, t, _ in preprocess.transformers_ if n == "onehot"]
    onehot.named_steps["encode"].handle_unknown = "error"
    return bad


@pytest.fixture(scope="module")
def registered(
    served_project: Path, tmp_path_factory: pytest.TempPathFactory, registers: Callable[..., int]
) -> Path:
    """The served project with versions 2 (same), 3 (raises), 4 (NaN), 5 (strict) registered."""
    root = tmp_path_factory.mktemp("deployment") / "rent"
    shutil.copytree(served_project, root)
    stable = load_model("rent/1", tracking_uri=_tracking_uri(root)).pipeline
    for expected, pipeline in (
        (SAME, stable),
        (RAISES, _raising(stable)),
        (NAN, _nan(stable)),
        (STRICT, _strict(stable)),
    ):
        assert str(registers(root, pipeline)) == expected
    return root


@pytest.fixture(scope="module")
def shared(registered: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project the module's server serves (a copy, so ``registered`` stays pristine)."""
    root = tmp_path_factory.mktemp("shared") / "rent"
    shutil.copytree(registered, root)
    return root


def _engine(project: Path) -> Engine:
    """The project's operational store, migrated first (as ``modelcycle deploy`` does)."""
    url = Settings.load(project).database_url
    assert url is not None
    upgrade(url)
    return make_engine(url)


def _tracking_uri(project: Path) -> str:
    uri = Settings.load(project).mlflow_tracking_uri
    assert uri is not None
    return uri


Server = Any
"""``modelcycle serve`` in its own process: conftest's ``ServerProcess``."""


@pytest.fixture(scope="module")
def launch(launch_server: Callable[..., Server]) -> Callable[..., Server]:
    """``launch(project, logs, **env)``: a server on a free port, not waited for.

    The deployment poll at its default, 1 s; the in-server rollout controller off, so nothing
    moves a rollout but the test's commands.
    """

    def start(project: Path, logs: Path, **env: str) -> Server:
        env = {"MODELCYCLE_CONTROLLER": "false", **env}
        return launch_server(project, logs, env=env, wait=False)

    return start


@pytest.fixture(scope="module")
def server(
    shared: Path, tmp_path_factory: pytest.TempPathFactory, launch: Callable[..., Server]
) -> Iterator[Server]:
    """One server for the module's routing tests (no API keys; the admin API is closed)."""
    _engine(shared).dispose()  # migrate before the server starts
    started = launch(shared, tmp_path_factory.mktemp("logs"))
    try:
        started.wait_ready(90)
        yield started
    finally:
        started.stop()


@dataclass
class Live:
    """The shared server and its stores, reset for one test.

    Attributes:
        server: The running server.
        project: The project it serves.
        engine: Its operational store.
        uri: Its MLflow store.
        start: How many history events there were before the test.
    """

    server: Server
    project: Path
    engine: Engine
    uri: str
    start: int

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self.server.url

    def deploy(self, version: str, strategy: Any, **plan: Any) -> DeploymentState:
        """``modelcycle deploy rent --version VERSION --strategy STRATEGY`` in this process."""
        state, _ = commands.deploy(
            self.engine,
            "rent",
            version,
            strategy,
            RolloutPlan(**plan),
            tracking_uri=self.uri,
            actor="test",
        )
        return state

    def events(self) -> list[Event]:
        """The history events recorded during this test."""
        return commands.history(self.engine, "rent")[self.start :]


@pytest.fixture(scope="module")
def shared_engine(shared: Path) -> Iterator[Engine]:
    engine = _engine(shared)
    yield engine
    engine.dispose()


@pytest.fixture
def live(server: Server, shared: Path, shared_engine: Engine) -> Live:
    """The shared server answering with v1 alone again (whatever the previous test left)."""
    engine, uri = shared_engine, _tracking_uri(shared)
    state = commands.status(engine, "rent")
    if state.active:
        state, _ = commands.abort(engine, "rent", actor="test-reset")
    if state.stable_version not in (None, "1"):
        state, _ = commands.rollback(engine, "rent", tracking_uri=uri, actor="test-reset", to="1")
    with httpx.Client(base_url=server.url, timeout=30) as client:

        def reset() -> bool:
            models = client.get("/models").json()
            deployment = models["deployment"]
            counter = 0 if deployment is None else deployment["version_counter"]
            loaded = [(m["version"], m["arm"]) for m in models["models"]]
            return counter >= state.version_counter and loaded == [("1", "stable")]

        _until("the server to answer with v1 alone", reset)
    return Live(server, shared, engine, uri, len(commands.history(engine, "rent")))


def _until(what: str, check: Callable[[], Any], timeout: float = 20, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def _logged(engine: Engine, ids: set[str], expected: int, timeout: float = 20) -> pd.DataFrame:
    """The logged rows of the request ``ids``, once at least ``expected`` of them are stored."""
    found = pd.DataFrame()

    def enough() -> bool:
        nonlocal found
        with engine.connect() as conn:
            frame = window(conn, "rent", with_features=False)
        found = frame[frame["request_id"].isin(ids)].reset_index(drop=True)
        return len(found) >= expected

    _until(f"{expected} logged rows", enough, timeout, every=0.1)
    return found


def _failures(url: str, version: str, arm: str) -> float:
    """``modelcycle_prediction_failures_total`` for one version and arm (0 when absent)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "modelcycle_prediction_failures_total"
        and sample.labels.get("version") == version
        and sample.labels.get("arm") == arm
    )


# --- talking to the server ------------------------------------------------------------------


def _answer(client: httpx.Client, row: dict[str, Any], **headers: str) -> dict[str, Any]:
    """POST one row to /predict; it must succeed."""
    response = client.post("/predict", json=row, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _applied(client: httpx.Client, state: DeploymentState, *, candidate: bool) -> dict[str, Any]:
    """Wait until the server routes by ``state`` (and, if ``candidate``, has the candidate)."""

    def check() -> dict[str, Any] | None:
        models = client.get("/models").json()
        deployment = models.get("deployment")
        if deployment is None or deployment["version_counter"] < state.version_counter:
            return None
        if candidate and not deployment["candidate_loaded"]:
            return None
        return dict(models)

    return dict(_until(f"the server to apply state {state.version_counter}", check))


def _error(response: httpx.Response, status: int, *needles: str) -> str:
    """The error message of a refused request, which must name every needle."""
    assert response.status_code == status, response.text
    message = str(response.json()["error"])
    for needle in needles:
        assert needle in message, (needle, response.json())
    return message


@dataclass
class Load:
    """One-row requests sent in a loop from a thread, until stopped (or ``limit`` seconds).

    Attributes:
        results: ``(monotonic time, status, version, arm)`` per request.
        errors: Transport errors.
    """

    url: str
    row: dict[str, Any]
    limit: float = 90.0
    results: list[tuple[float, int, str | None, str | None]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    response = client.post("/predict", json=self.row)
                except httpx.HTTPError as err:
                    self.errors.append(repr(err))
                    time.sleep(0.05)
                    continue
                body = response.json() if response.status_code == 200 else {}
                self.results.append(
                    (time.monotonic(), response.status_code, body.get("version"), body.get("arm"))
                )
                time.sleep(0.005)

    def after(self, moment: float) -> list[tuple[float, int, str | None, str | None]]:
        """The results of requests answered after ``moment``."""
        return [r for r in list(self.results) if r[0] > moment]

    def wait_for(
        self, what: str, match: Callable[[str | None, str | None], bool], since: float
    ) -> float:
        """The time of the first answer after ``since`` that ``match(version, arm)`` accepts."""

        def first() -> float | None:
            return next((t for t, _, v, a in self.after(since) if match(v, a)), None)

        return float(_until(what, first, timeout=20))


def _runs(values: list[Any]) -> list[Any]:
    """``values`` with consecutive repeats collapsed: [1, 1, 2, 2, 1] → [1, 2, 1]."""
    return [value for value, _ in itertools.groupby(values)]


# --- 1. canary ----------------------------------------------------------------------------------


def test_canary_takes_its_share_within_seconds_and_every_row_names_its_arm(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    row = _rows(1, seed=3)[0]
    with httpx.Client(base_url=live.url, timeout=30) as client:
        before = _answer(client, row)
        assert (before["version"], before["arm"]) == ("1", "stable")

        state = live.deploy(SAME, "canary", canary_weight=30)
        deployed = time.monotonic()
        assert (state.status, state.candidate_version, state.weight) == ("canary", SAME, 30)

        def canary() -> float | None:
            body = _answer(client, row)
            return time.monotonic() - deployed if body["arm"] == "canary" else None

        took = float(_until("a canary answer", canary, timeout=15, every=0.01))
        with capsys.disabled():
            print(f"\n[deployment] deploy → first canary answer: {took:.2f} s (poll every 1 s)")
        assert took < 3.0, f"routing took {took:.2f} s to reach the server"

        answers: dict[str, tuple[str, str]] = {}
        for _ in range(300):
            rid = uuid.uuid4().hex
            body = _answer(client, row, **{"X-Request-ID": rid})
            assert body["request_id"] == rid
            answers[rid] = (body["version"], body["arm"])
    assert set(answers.values()) == {("1", "stable"), ("2", "canary")}
    share = sum(arm == "canary" for _, arm in answers.values()) / len(answers)
    bound = 4.5 * (0.3 * 0.7 / len(answers)) ** 0.5  # 4.5 sigma: ±0.12
    assert abs(share - 0.3) < bound, f"canary share {share:.3f}, expected 0.30 ± {bound:.3f}"

    logged = _logged(live.engine, set(answers), len(answers))
    assert len(logged) == len(answers), "every request is logged exactly once"
    stored = {r.request_id: (r.model_version, r.arm) for r in logged.itertuples()}
    assert stored == answers, "each row is logged with the version and arm that answered"
    assert logged["error"].isna().all()


# --- 2. sticky routing ---------------------------------------------------------------------------


def test_a_routing_key_always_lands_on_the_same_version(live: Live) -> None:
    row = _rows(1, seed=5)[0]
    keys = [f"apartment-{i}" for i in range(200)]
    to_canary = [k for k in keys if bucket(k) < 50][:3]
    to_stable = [k for k in keys if bucket(k) >= 50][:3]
    with httpx.Client(base_url=live.url, timeout=30) as client:
        _applied(client, live.deploy(SAME, "canary", canary_weight=50), candidate=True)

        for key in to_canary + to_stable:
            seen = {
                (b["version"], b["arm"])
                for b in (_answer(client, row, **{"X-Routing-Key": key}) for _ in range(20))
            }
            expected = ("2", "canary") if key in to_canary else ("1", "stable")
            assert seen == {expected}, (key, seen)

        versions = {k: _answer(client, row, **{"X-Routing-Key": k})["version"] for k in keys[:40]}
        assert set(versions.values()) == {"1", "2"}, "different keys split between versions"
        assert versions == {k: "2" if bucket(k) < 50 else "1" for k in keys[:40]}

        # a routing feature (the spec's routing_key): the row's neighborhood routes it
        commands.abort(live.engine, "rent", actor="test")
        state = live.deploy(SAME, "canary", canary_weight=50, routing_key="neighborhood")
        _applied(client, state, candidate=True)
        rows = _rows(30, seed=8)
        for one in rows[:10]:
            seen_versions = {_answer(client, one)["version"] for _ in range(5)}
            assert seen_versions == {"2" if bucket(str(one["neighborhood"])) < 50 else "1"}, one
        header_wins = _answer(client, rows[0], **{"X-Routing-Key": to_canary[0]})
        assert header_wins["version"] == "2"


# --- 3. shadow ------------------------------------------------------------------------------------


def test_shadow_answers_from_stable_and_logs_both_arms_under_one_request_id(live: Live) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        models = _applied(client, live.deploy(SAME, "shadow"), candidate=True)
        assert {(m["version"], m["arm"]) for m in models["models"]} == {
            ("1", "stable"),
            ("2", "shadow"),
        }
        ids = set()
        for row in _rows(20, seed=9):
            rid = uuid.uuid4().hex
            body = _answer(client, row, **{"X-Request-ID": rid})
            assert (body["version"], body["arm"]) == ("1", "stable")
            ids.add(rid)

    logged = _logged(live.engine, ids, 2 * len(ids))
    assert len(logged) == 2 * len(ids)
    for rid, group in logged.groupby("request_id"):
        arms = dict(zip(group["arm"], group["model_version"], strict=True))
        assert arms == {"stable": "1", "shadow": "2"}, (rid, arms)
        # v2 is v1's pipeline: the shadow agrees with the answer
        assert group["prediction"].nunique() == 1, group
    assert logged["error"].isna().all()


# --- 4. blue-green under load -----------------------------------------------------------------


def test_blue_green_switch_and_rollback_under_load_fail_no_request(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    with Load(live.url, _rows(1, seed=4)[0]) as load:
        load.wait_for("the first answers", lambda v, a: v == "1", since=0)
        state = live.deploy(SAME, "blue-green")
        assert (state.status, state.weight) == ("blue_green", 100)
        switched = load.wait_for("green", lambda v, a: a == "green", since=time.monotonic() - 0.01)
        _until("20 green answers", lambda: len(load.after(switched)) >= 20)

        commands.rollback(live.engine, "rent", tracking_uri=live.uri, actor="test")
        rolled = time.monotonic()
        back = load.wait_for("v1 again", lambda v, a: v == "1", since=rolled)
        _until("20 answers after the rollback", lambda: len(load.after(back)) >= 20)
    with capsys.disabled():
        print(f"\n[deployment] rollback → first v1 answer: {back - rolled:.2f} s (poll every 1 s)")
    assert back - rolled < 3.0

    assert not load.errors, load.errors[:3]
    statuses = {status for _, status, _, _ in load.results}
    assert statuses == {200}, f"non-2xx responses during the switch: {statuses}"
    assert _runs([v for _, _, v, _ in load.results]) == ["1", "2", "1"]
    assert {a for _, _, v, a in load.results if v == "2"} == {"green"}
    assert {a for _, _, v, a in load.results if v == "1"} <= {"stable", "blue"}
    assert all(a == "stable" for _, _, _, a in load.after(back))

    final = commands.status(live.engine, "rent")
    assert (final.status, final.stable_version, final.candidate_version) == (
        "rolled_back",
        "1",
        None,
    )
    assert [e.action for e in live.events()] == ["deploy", "rollback"]


# --- 5. promote -----------------------------------------------------------------------------------


def test_promote_moves_every_answer_and_the_aliases_without_errors(live: Live) -> None:
    row = _rows(1, seed=6)[0]
    with httpx.Client(base_url=live.url, timeout=30) as client:
        _applied(client, live.deploy(SAME, "canary", canary_weight=30), candidate=True)
        assert resolve_version("rent@challenger", tracking_uri=live.uri) == 2
        with Load(live.url, row) as load:
            load.wait_for("a canary answer", lambda v, a: a == "canary", since=0)
            # servers may follow the promotion before the command returns (it also moves the
            # aliases): what was answered before it started is what the canary state allows
            promoting = time.monotonic()
            state, event = commands.promote(live.engine, "rent", tracking_uri=live.uri, actor="t")
            assert (state.status, state.stable_version, state.previous_version) == (
                "promoted",
                "2",
                "1",
            )
            assert (event.action, event.to_version) == ("promote", "2")
            _applied(client, state, candidate=False)
            settled = time.monotonic()
            _until("30 answers after the switch", lambda: len(load.after(settled)) >= 30)
        for _ in range(20):
            body = _answer(client, row)
            assert (body["version"], body["arm"]) == ("2", "stable")
        models = client.get("/models").json()
        assert [(m["version"], m["arm"]) for m in models["models"]] == [("2", "stable")]
        assert models["deployment"]["status"] == "promoted"

    assert not load.errors, load.errors[:3]
    assert {status for _, status, _, _ in load.results} == {200}
    assert {(v, a) for _, _, v, a in load.after(settled)} == {("2", "stable")}
    assert {(v, a) for t, _, v, a in load.results if t <= promoting} <= {
        ("1", "stable"),
        ("2", "canary"),
    }
    assert resolve_version("rent@champion", tracking_uri=live.uri) == 2
    assert resolve_version("rent@previous", tracking_uri=live.uri) == 1


# --- 6. failing candidates ------------------------------------------------------------------------


def test_a_candidate_that_raises_never_fails_a_request(live: Live) -> None:
    rows = _rows(40, seed=12)
    huge = {i for i in range(len(rows)) if i % 2 == 0}
    for i in huge:
        rows[i] = {**rows[i], "area": HUGE}
    with httpx.Client(base_url=live.url, timeout=30) as client:
        state = live.deploy(RAISES, "canary", canary_weight=50)
        _applied(client, state, candidate=True)  # it passed its smoke test
        failed_before = _failures(live.url, RAISES, "canary")
        answers: dict[str, tuple[int, str, str]] = {}
        for i, row in enumerate(rows):
            rid = f"bad-{i}-{uuid.uuid4().hex[:8]}"
            body = _answer(client, row, **{"X-Request-ID": rid})
            answers[rid] = (i, body["version"], body["arm"])
            if i in huge:
                assert (body["version"], body["arm"]) == ("1", "stable"), body
        failed = _failures(live.url, RAISES, "canary") - failed_before

    assert {(v, a) for i, v, a in answers.values() if i not in huge} <= {
        ("1", "stable"),
        ("3", "canary"),
    }
    assert failed > 0, "half the huge rows were routed to the candidate, and it raised on them"
    logged = _logged(live.engine, set(answers), len(answers) + int(failed))
    errors = logged[logged["error"].notna()]
    assert len(errors) == failed, "one error record per failed candidate prediction"
    assert set(zip(errors["model_version"], errors["arm"], strict=True)) == {("3", "canary")}
    assert errors["error"].str.contains("infinity").all(), errors["error"].tolist()
    assert errors["prediction"].isna().all()
    for rid in errors["request_id"]:
        assert answers[rid][0] in huge
        mine = logged[(logged["request_id"] == rid) & logged["error"].isna()]
        assert list(zip(mine["model_version"], mine["arm"], strict=True)) == [("1", "stable")]
        assert mine["prediction"].notna().all()
    answered = logged[logged["error"].isna()]
    assert len(answered) == len(answers), "every request has exactly one answering record"
    assert commands.status(live.engine, "rent").status == "canary", "the rollout goes on"


def test_a_candidate_that_cannot_be_warmed_or_smoke_tested_is_marked_failed(live: Live) -> None:
    row = _rows(1, seed=13)[0]
    with httpx.Client(base_url=live.url, timeout=30) as client:
        for version, why in ((NAN, "non-finite"), (STRICT, "smoke test failed")):
            live.deploy(version, "canary", canary_weight=50)
            state = _until(
                f"v{version}'s rollout to be marked failed",
                lambda: (s := commands.status(live.engine, "rent")).status == "failed" and s,
            )
            assert (state.stable_version, state.candidate_version) == ("1", None)
            last = live.events()[-1]
            assert (last.action, last.actor, last.from_version) == ("failed", "server", version)
            assert last.reason is not None
            assert why in last.reason, last.reason
            assert f"v{version}" in last.reason, last.reason
            models = _applied(client, state, candidate=False)
            assert [(m["version"], m["arm"]) for m in models["models"]] == [("1", "stable")]
            for _ in range(20):
                body = _answer(client, row)
                assert (body["version"], body["arm"]) == ("1", "stable")
    assert [e.action for e in live.events()] == ["deploy", "failed", "deploy", "failed"]


# --- 7. admin API -------------------------------------------------------------------------------


def test_admin_api_is_closed_by_default_and_guarded_by_the_admin_key(
    live: Live, tmp_path: Path, launch: Callable[..., Server]
) -> None:
    keys = {"MODELCYCLE_ADMIN_API_KEYS": ADMIN_KEY, "MODELCYCLE_PREDICT_API_KEYS": PREDICT_KEY}
    guarded = launch(live.project, tmp_path, **keys)  # a second server on the same project
    try:
        _check_admin_api(live, guarded)
    finally:
        guarded.stop()


def _quick_deploy_and_abort(live: Live, guarded: Server, version: str, delay: float) -> None:
    """POST deploy, then POST abort while the server is still loading the candidate.

    The server must end up routing by the later command (the abort), not by whichever of the
    two refreshes finished last.
    """
    path = "/admin/deployments/rent"
    with (
        httpx.Client(base_url=guarded.url, timeout=60, headers={"X-API-Key": ADMIN_KEY}) as client,
        ThreadPoolExecutor(1) as pool,
    ):
        deploying = pool.submit(
            client.post, f"{path}/deploy", json={"version": version, "strategy": "canary"}
        )
        _until("the deploy", lambda: commands.status(live.engine, "rent").active, 30, 0.005)
        time.sleep(delay)
        aborted = client.post(f"{path}/abort")
        assert aborted.status_code == 200, aborted.text
        assert deploying.result().status_code == 200, deploying.result().text
        stored = commands.status(live.engine, "rent")
        models = client.get("/models").json()
    assert models["deployment"]["version_counter"] == stored.version_counter, models
    assert [(m["version"], m["arm"]) for m in models["models"]] == [("1", "stable")]


def _check_admin_api(live: Live, guarded: Server) -> None:
    row = _rows(1, seed=14)[0]
    admin = {"X-API-Key": ADMIN_KEY}
    path = "/admin/deployments/rent"

    # the module's server has no admin key: its admin API is closed
    with httpx.Client(base_url=live.url, timeout=30) as client:
        for response in (
            client.get(path),
            client.get(path, headers=admin),
            client.post(f"{path}/deploy", json={"version": "2"}, headers=admin),
        ):
            _error(response, 403, "MODELCYCLE_ADMIN_API_KEYS", "disabled")

    guarded.wait_ready(90)
    # quick successive commands, first on a server that has loaded no candidate yet (slow)
    for version, delay in ((RAISES, 0.05), (SAME, 0.05), (SAME, 0.15)):
        _quick_deploy_and_abort(live, guarded, version, delay)
    races = len(live.events())
    assert [e.action for e in live.events()] == ["deploy", "abort"] * 3

    with httpx.Client(base_url=guarded.url, timeout=30) as client:
        _error(client.get(path), 401, "admin API key")
        _error(client.get(path, headers={"X-API-Key": "not-the-key"}), 401, "not valid")
        _error(client.get(path, headers={"Authorization": f"Bearer {PREDICT_KEY}"}), 403, "admin")
        # the key is checked before the body: a stranger's malformed request is a 401, not a 422
        _error(client.post(f"{path}/deploy", json={"bogus": 1}), 401, "admin API key")
        _error(client.get("/admin/deployments/nosuch", headers=admin), 404, "'nosuch'", "'rent'")

        current = client.get(path, headers=admin)
        assert current.status_code == 200, current.text
        now = current.json()
        assert (now["status"], now["stable_version"], now["candidate_version"]) == (
            "rolled_back",
            "1",
            None,
        )

        _error(client.post(f"{path}/deploy", json={"version": "99"}, headers=admin), 400, "99")
        too_big = client.post(f"{path}/deploy", json={"version": "2", "weight": 150}, headers=admin)
        assert too_big.status_code == 422, too_big.text

        deployed = client.post(
            f"{path}/deploy",
            json={"version": "2", "strategy": "canary", "weight": 50, "reason": "try v2"},
            headers=admin,
        )
        assert deployed.status_code == 200, deployed.text
        body = deployed.json()
        assert (body["state"]["status"], body["state"]["candidate_version"]) == ("canary", "2")
        assert (body["event"]["action"], body["event"]["reason"]) == ("deploy", "try v2")
        # this server routes the new way as soon as the command answers
        models = client.get("/models").json()
        assert models["deployment"]["candidate_loaded"] is True
        assert ("2", "canary") in {(m["version"], m["arm"]) for m in models["models"]}
        arms = {_answer(client, row, **admin)["arm"] for _ in range(40)}
        assert arms == {"stable", "canary"}

        [event] = client.get(f"{path}/history?limit=1", headers=admin).json()["events"]
        assert (event["action"], event["to_version"]) == ("deploy", "2")
        assert event["actor"].startswith("admin-api@")

        conflict = client.post(f"{path}/deploy", json={"version": "3"}, headers=admin)
        _error(conflict, 409, "version 2 is being rolled out")
        assert "promote" in conflict.json()["hint"]

        promoted = client.post(f"{path}/promote", headers=admin)
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["state"]["stable_version"] == "2"
        for _ in range(20):
            answer = _answer(client, row, **{"Authorization": f"Bearer {PREDICT_KEY}"})
            assert (answer["version"], answer["arm"]) == ("2", "stable")
        _error(client.post(f"{path}/promote", headers=admin), 409, "nothing to promote")
        assert resolve_version("rent@champion", tracking_uri=live.uri) == 2

    # the other server (another worker) follows within its poll interval
    with httpx.Client(base_url=live.url, timeout=30) as client:
        _until("the other server to answer with v2", lambda: _answer(client, row)["version"] == "2")

    with httpx.Client(base_url=guarded.url, timeout=30) as client:
        back = client.post(f"{path}/rollback", json={"reason": "v2 regressed"}, headers=admin)
        assert back.status_code == 200, back.text
        assert back.json()["state"]["stable_version"] == "1"
        assert _answer(client, row, **admin)["version"] == "1"
        history = client.get(f"{path}/history", params={"limit": 2}, headers=admin).json()
        assert [e["action"] for e in history["events"]] == ["promote", "rollback"]
    assert resolve_version("rent@champion", tracking_uri=live.uri) == 1
    assert [e.action for e in live.events()[races:]] == ["deploy", "promote", "rollback"]


# --- 8. concurrent deploys ------------------------------------------------------------------------


def _race(engine: Engine, uri: str, versions: tuple[str, ...]) -> dict[str, Any]:
    """Deploy each of ``versions`` from its own thread, all released at once by a barrier.

    Returns:
        Per version, the new state (the command won) or the exception it raised.
    """
    barrier = threading.Barrier(len(versions))
    outcomes: dict[str, Any] = {}

    def deploy(version: str) -> None:
        barrier.wait()
        try:
            outcomes[version] = commands.deploy(
                engine,
                "rent",
                version,
                "canary",
                RolloutPlan(canary_weight=20),
                tracking_uri=uri,
                actor=f"thread-{version}",
            )[0]
        except Exception as err:
            outcomes[version] = err

    threads = [threading.Thread(target=deploy, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_of_two_concurrent_deploys_exactly_one_wins(registered: Path, tmp_path: Path) -> None:
    project = tmp_path / "rent"
    shutil.copytree(registered, project)  # never deployed: the first round inserts the state
    engine, uri = _engine(project), _tracking_uri(project)
    for round_ in range(3):  # first on a never-deployed model (insert), then updates
        outcomes = _race(engine, uri, (SAME, RAISES))
        won = [v for v, o in outcomes.items() if isinstance(o, DeploymentState)]
        lost = [o for o in outcomes.values() if not isinstance(o, DeploymentState)]
        assert (len(won), len(lost)) == (1, 1), (round_, outcomes)
        assert isinstance(lost[0], DeploymentError), repr(lost[0])
        message = str(lost[0])
        assert "rent" in message, message
        assert "another command won" in message or "is being rolled out" in message, message
        state = commands.status(engine, "rent")
        assert (state.status, state.candidate_version) == ("canary", won[0])
        commands.abort(engine, "rent", actor="test")

    actions = [e.action for e in commands.history(engine, "rent")]
    assert actions == ["deploy", "abort"] * 3
    engine.dispose()


def test_the_servers_controller_rolls_a_failing_ramp_back_without_failing_a_request(
    registered: Path, tmp_path: Path, launch: Callable[..., Server]
) -> None:
    """A ramp of v3 (which raises on half the traffic here) meets the in-server controller.

    The error gate fails on the first evaluations, the failure limit (2) is reached, and the
    controller rolls v3 back, records why and opens an alert; every request is answered 200.
    """
    import sqlalchemy as sa

    from modelcycle.config.spec import load_project
    from modelcycle.demo_live import quick_rollouts
    from modelcycle.store.schema import alerts

    root = tmp_path / "rent"
    shutil.copytree(registered, root)
    quick_rollouts(root / "modelcycle.toml")  # evaluations every second, 2 s per step
    engine = _engine(root)
    (tmp_path / "logs").mkdir()
    started = launch(root, tmp_path / "logs", MODELCYCLE_CONTROLLER="true")
    try:
        started.wait_ready(90)
        plan = commands.plan_from_spec(load_project(root).spec.deployment)
        commands.deploy(
            engine, "rent", RAISES, "ramp", plan, tracking_uri=_tracking_uri(root), actor="test"
        )
        rows = _rows(60, seed=21)
        statuses: list[int] = []
        seen: set[tuple[str, str]] = set()
        with httpx.Client(base_url=started.url, timeout=30) as client:

            def rolled_back() -> bool:
                for i, row in enumerate(rows):
                    response = client.post("/predict", json={**row, "area": HUGE} if i % 2 else row)
                    statuses.append(response.status_code)
                    body = response.json()
                    seen.add((body["version"], body["arm"]))
                return commands.status(engine, "rent").status == "rolled_back"

            _until("the controller to roll v3 back", rolled_back, timeout=60, every=0.0)
            after = _answer(client, rows[0])
        state = commands.status(engine, "rent")
        events = commands.history(engine, "rent")
        with engine.connect() as conn:
            opened = conn.execute(
                sa.select(alerts.c.rule, alerts.c.model_version, alerts.c.status)
            ).all()
    finally:
        started.stop()
        engine.dispose()

    assert set(statuses) == {200}, "no request failed while the candidate did"
    assert ("3", "canary") in seen, "v3 answered part of the traffic before it was rolled back"
    assert (state.stable_version, state.candidate_version) == ("1", None)
    assert (after["version"], after["arm"]) == ("1", "stable")
    actions = [(e.action, e.actor) for e in events]
    assert ("gate_failed", "controller") in actions
    assert actions[-1] == ("auto_rollback", "controller")
    assert "error_rate" in (events[-1].reason or "")
    assert ("deployment_gate", "3", "open") in opened
    assert resolve_version("rent@champion", tracking_uri=_tracking_uri(root)) == 1
