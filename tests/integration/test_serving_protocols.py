"""The model server's foreign protocols, end to end: MLflow's scoring protocol and OIP v2.

One real ``modelcycle serve`` process for the whole module, on a private copy of the served rent
project (rent/1, LightGBM, champion). MLflow compatibility is judged by MLflow itself: each
payload, built with MLflow's own helpers where they exist, goes to our ``/invocations`` and to
MLflow's own scoring server (``mlflow.pyfunc.scoring_server.init`` on ``models:/rent/1``, run
with uvicorn as ``mlflow models serve`` runs it), and the two answers must agree. The Open
Inference Protocol is spoken by Triton's own HTTP client, with JSON and binary tensor data.
Every prediction must then be in the prediction log, under the request's id.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from modelcycle import __version__
from modelcycle.registry.store import LoadedModel, load_model
from modelcycle.serving.inputs import InputRules
from modelcycle.store import make_engine, window

pytestmark = [
    pytest.mark.slow,
    # third-party noise from inside MLflow's helpers, not from the code under test
    pytest.mark.filterwarnings("ignore:Operation with range is deprecated"),
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
]

JSON = "application/json"
PARQUET = "application/vnd.apache.parquet"  # MLflow's own parquet content type
Rows = list[dict[str, Any]]


# ------------------------------------------------------------------------------------ servers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Server = Any
"""``python -m modelcycle --project ROOT serve --port PORT``: conftest's ``ServerProcess``."""


@pytest.fixture(scope="module")
def launched(
    served_project: Path,
    tmp_path_factory: pytest.TempPathFactory,
    launch_server: Callable[..., Server],
) -> Iterator[Server]:
    """Our server, started but maybe not ready yet (MLflow's loads meanwhile)."""
    base = tmp_path_factory.mktemp("protocols")
    root = base / "rent"
    shutil.copytree(served_project, root)
    stores = root / ".modelcycle"
    env = {
        "MODELCYCLE_MLFLOW_TRACKING_URI": f"sqlite:///{stores / 'mlflow.db'}",
        "MODELCYCLE_DATABASE_URL": f"sqlite:///{stores / 'modelcycle.db'}",
        "MODELCYCLE_MODEL_POLL_SECONDS": "0",  # the alias never moves here: no polling
    }
    server = launch_server(root, base, env=env, wait=False)
    yield server
    server.stop()
    assert "internal error" not in server.output(), server.output()  # never a 500


@pytest.fixture(scope="module")
def server(launched: Server) -> Server:
    """Our server, ready."""
    launched.wait_ready(120)
    return launched


@dataclass
class MLflowServer:
    """MLflow's own scoring server for ``models:/rent/1``, over HTTP like ``mlflow models serve``."""

    url: str
    model: Any  # mlflow.pyfunc.PyFuncModel


@pytest.fixture(scope="module")
def mlflow_server(launched: Server) -> Iterator[MLflowServer]:
    """MLflow's scoring app (``scoring_server.init``) in a uvicorn thread, on the same model."""
    import mlflow
    import uvicorn
    from mlflow.environment_variables import _MLFLOW_IS_IN_SERVING_ENVIRONMENT
    from mlflow.pyfunc import scoring_server
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    uri = launched.tracking_uri
    with pytest.MonkeyPatch.context() as patch:  # as a plain MLflow user would, then put back
        patch.setattr(tracking_utils, "_tracking_uri", uri)
        patch.setattr(registry_utils, "_registry_uri", uri)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        patch.delenv(_MLFLOW_IS_IN_SERVING_ENVIRONMENT.name, raising=False)  # init() sets it
        model = mlflow.pyfunc.load_model("models:/rent/1")
        port = _free_port()
        config = uvicorn.Config(
            scoring_server.init(model), host="127.0.0.1", port=port, log_level="warning"
        )
        uv = uvicorn.Server(config)
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not uv.started:
            assert thread.is_alive(), "MLflow's scoring server stopped while starting"
            assert time.monotonic() < deadline, "MLflow's scoring server did not start in 30 s"
            time.sleep(0.05)
        try:
            yield MLflowServer(f"http://127.0.0.1:{port}", model)
        finally:
            uv.should_exit = True
            thread.join(10)


@pytest.fixture(scope="module")
def model(server: Server) -> LoadedModel:
    """modelcycle's own loader on the served alias: the reference predictions."""
    return load_model("rent@champion", tracking_uri=server.tracking_uri)


@pytest.fixture(scope="module")
def rules(model: LoadedModel) -> InputRules:
    return InputRules(model.schema, model.name)


def _feature(rules: InputRules, kind: str, *, required: bool) -> str:
    found = [
        r.name
        for r in rules.features
        if r.kind == kind and r.required == required and not r.numeric_codes
    ]
    assert found, f"the rent model has no {'required' if required else 'optional'} {kind} feature"
    return found[0]


@pytest.fixture
def rows(rent_rows: Callable[..., Rows], rules: InputRules) -> Rows:
    """Six rent rows; an optional category and an optional number are missing in two of them."""
    made = rent_rows(6, seed=11)
    made[1][_feature(rules, "categorical", required=False)] = None
    made[2][_feature(rules, "numeric", required=False)] = None
    return made


@pytest.fixture
def store(server: Server) -> Iterator[Callable[[str, int], pd.DataFrame]]:
    """``logged(request_id, rows)``: that request's logged rows, waiting until all ``rows`` are."""
    engine = make_engine(server.database_url)

    def logged(request_id: str, expected: int, timeout: float = 20) -> pd.DataFrame:
        deadline = time.monotonic() + timeout
        while True:
            with engine.connect() as conn:
                frame = window(conn, "rent")
            mine = frame[frame["request_id"] == request_id].sort_values("row")
            if len(mine) >= expected or time.monotonic() > deadline:
                assert len(mine) == expected, f"{request_id}: {len(mine)} of {expected} rows logged"
                return mine.reset_index(drop=True)
            time.sleep(0.2)

    yield logged
    engine.dispose()


def _expected(model: LoadedModel, rows: Rows) -> np.ndarray:
    return model.predict(pd.DataFrame(rows))["prediction"].to_numpy(dtype=float)


# ------------------------------------------------------------------------ MLflow: same answers


def _columns(rows: Rows) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in rows[0]}


def _payload(kind: str, rows: Rows) -> tuple[bytes, str]:
    """A request body in one of MLflow's formats, made by MLflow's own helpers where they exist."""
    from mlflow.models.utils import convert_input_example_to_serving_input as serving_input
    from mlflow.utils.proto_json_utils import dump_input_data

    frame = pd.DataFrame(rows)
    text: str
    if kind == "dataframe_split (MLflow's client)":
        text = dump_input_data(frame)  # what ScoringServerClient.invoke posts; NaN when missing
    elif kind == "dataframe_split (serving input example)":
        text = serving_input(frame)
    elif kind == "dataframe_records":
        text = json.dumps({"dataframe_records": rows})
    elif kind == "instances (records)":
        text = json.dumps({"instances": rows})
    elif kind == "instances (columns)":
        text = json.dumps({"instances": _columns(rows)})
    elif kind == "inputs (columns)":
        text = serving_input(_columns(rows))
    elif kind == "inputs (records)":
        text = serving_input(rows)
    elif kind == "inputs (one row of scalars)":
        text = json.dumps({"inputs": rows[0]})
    elif kind == "params":
        text = dump_input_data(frame, params={"alpha": 0.5})
    elif kind == "parquet":
        return frame.to_parquet(), PARQUET
    else:
        raise AssertionError(kind)
    return text.encode(), JSON


FORMATS = [
    "dataframe_split (MLflow's client)",
    "dataframe_split (serving input example)",
    "dataframe_records",
    "instances (records)",
    "instances (columns)",
    "inputs (columns)",
    "inputs (records)",
    "inputs (one row of scalars)",
    "params",
    "parquet",
]


def _assert_same_predictions(ours: httpx.Response, theirs: dict[str, Any], rows: int) -> None:
    assert ours.status_code == 200, ours.text
    assert ours.headers["content-type"].startswith(JSON)
    mine = ours.json()
    assert set(mine) == set(theirs) == {"predictions"}
    assert len(mine["predictions"]) == len(theirs["predictions"]) == rows
    for got, want in zip(mine["predictions"], theirs["predictions"], strict=True):
        assert got.keys() == want.keys()
        assert got == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("kind", FORMATS)
def test_invocations_answer_as_mlflows_own_server(
    mlflow_server: MLflowServer, server: Server, model: LoadedModel, rows: Rows, kind: str
) -> None:
    body, content_type = _payload(kind, rows)
    headers = {"content-type": content_type}
    theirs = httpx.post(f"{mlflow_server.url}/invocations", content=body, headers=headers)
    assert theirs.status_code == 200, f"MLflow's own server refused it: {theirs.text[:500]}"
    ours = httpx.post(f"{server.url}/invocations", content=body, headers=headers)
    count = 1 if kind == "inputs (one row of scalars)" else len(rows)
    _assert_same_predictions(ours, theirs.json(), count)
    values = [p["prediction"] for p in ours.json()["predictions"]]
    assert values == pytest.approx(_expected(model, rows[:count]).tolist(), rel=1e-9)


def test_csv_is_parsed_and_predicted_as_mlflow_does(
    mlflow_server: MLflowServer, server: Server, rows: Rows
) -> None:
    """MLflow's server cannot read CSV for this model (its signature has ``any`` columns, which
    have no pandas dtype), so the reference is MLflow's CSV parser without a schema and the
    pyfunc, serialised by MLflow's own ``predictions_to_json``."""
    from mlflow.pyfunc import scoring_server

    csv = pd.DataFrame(rows).to_csv(index=False)
    frame = scoring_server.parse_csv_input(io.StringIO(csv))
    answer = io.StringIO()
    scoring_server.predictions_to_json(mlflow_server.model.predict(frame), answer)
    for content_type in ("text/csv", "text/csv; charset=utf-8"):
        ours = httpx.post(
            f"{server.url}/invocations", content=csv, headers={"content-type": content_type}
        )
        _assert_same_predictions(ours, json.loads(answer.getvalue()), len(rows))


def test_mlflows_scoring_client_works_against_our_server(
    mlflow_server: MLflowServer, server: Server, rows: Rows
) -> None:
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    ours = ScoringServerClient("127.0.0.1", server.port)
    theirs = ScoringServerClient("127.0.0.1", int(mlflow_server.url.rsplit(":", 1)[1]))
    ours.wait_server_ready(timeout=5)
    assert ours.get_version() == theirs.get_version()
    frame = pd.DataFrame(rows)
    got = ours.invoke(frame, params={"alpha": 0.5}).get_predictions()
    want = theirs.invoke(frame, params={"alpha": 0.5}).get_predictions()
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9)


def test_ping_health_and_version_answer_as_mlflow(
    mlflow_server: MLflowServer, server: Server
) -> None:
    import mlflow

    for path in ("/ping", "/health", "/version"):
        ours = httpx.get(f"{server.url}{path}")
        theirs = httpx.get(f"{mlflow_server.url}{path}")
        assert ours.status_code == theirs.status_code == 200
        assert ours.text == theirs.text
    assert httpx.get(f"{server.url}/version").text == mlflow.__version__


BAD_PAYLOADS: dict[str, tuple[Callable[[Rows, InputRules], str | bytes], str, str]] = {
    # name: (body maker, content type, a phrase the error must contain)
    "no known key": (lambda r, _: json.dumps({"rows": r}), JSON, "exactly one of"),
    "two keys": (
        lambda r, _: json.dumps({"dataframe_records": r, "instances": r}),
        JSON,
        "exactly one of",
    ),
    "a list, not an object": (lambda r, _: json.dumps(r), JSON, "dataframe_split"),
    "not JSON": (lambda r, _: b'{"dataframe_records": [', JSON, "not valid JSON"),
    "records as one object": (
        lambda r, _: json.dumps({"dataframe_records": r[0]}),
        JSON,
        "list of records",
    ),
    "garbage CSV": (lambda r, _: 'area,rooms\n"unterminated', "text/csv", "CSV"),
    "missing feature": (
        lambda r, rules: json.dumps(
            {"dataframe_records": [{k: v for k, v in row.items() if k != _req(rules)} for row in r]}
        ),
        JSON,
        "missing required feature",
    ),
    "wrong type": (
        lambda r, rules: json.dumps(
            {"dataframe_records": [{**row, _req(rules): "plenty"} for row in r]}
        ),
        JSON,
        "expected a number",
    ),
}


def _req(rules: InputRules) -> str:
    return _feature(rules, "numeric", required=True)


@pytest.mark.parametrize("name", list(BAD_PAYLOADS))
def test_invalid_payloads_are_refused_with_mlflows_error_format(
    mlflow_server: MLflowServer, server: Server, rows: Rows, rules: InputRules, name: str
) -> None:
    make, content_type, phrase = BAD_PAYLOADS[name]
    body = make(rows, rules)
    headers = {"content-type": content_type}
    theirs = httpx.post(f"{mlflow_server.url}/invocations", content=body, headers=headers)
    assert 400 <= theirs.status_code < 500, f"MLflow itself accepted it: {theirs.text[:300]}"
    ours = httpx.post(f"{server.url}/invocations", content=body, headers=headers)
    assert 400 <= ours.status_code < 500, ours.text
    error = ours.json()
    assert error["error_code"] == "BAD_REQUEST"  # MLflow says BAD_REQUEST or a finer code
    assert "error_code" in theirs.json()
    assert phrase in error["error"], error
    if name in ("missing feature", "wrong type"):
        assert _req(rules) in error["error"]
        assert error["message"] == error["error"]
        assert error["problems"], error


def test_other_refusals_are_4xx_not_500(server: Server) -> None:
    empty = httpx.post(f"{server.url}/invocations", content=b"", headers={"content-type": JSON})
    assert empty.status_code == 400
    assert "empty" in empty.json()["error"]
    plain = httpx.post(
        f"{server.url}/invocations", content=b"x", headers={"content-type": "text/plain"}
    )
    assert plain.status_code == 415
    assert "text/plain" in plain.json()["error"]


# --------------------------------------------------------------------------- MLflow: logging


def test_every_invocations_row_is_logged_under_its_request_id(
    server: Server, rows: Rows, rules: InputRules, store: Callable[[str, int], pd.DataFrame]
) -> None:
    sent: dict[str, tuple[int, list[float]]] = {}
    kinds = [*FORMATS, "csv"]
    for kind in kinds:
        if kind == "csv":
            body: bytes | str = pd.DataFrame(rows).to_csv(index=False)
            content_type = "text/csv"
        else:
            body, content_type = _payload(kind, rows)
        rid = f"mlflow-{kind.split()[0]}-{uuid.uuid4().hex[:8]}"
        answer = httpx.post(
            f"{server.url}/invocations",
            content=body,
            headers={"content-type": content_type, "x-request-id": rid},
        )
        assert answer.status_code == 200, (kind, answer.text)
        assert answer.headers["x-request-id"] == rid
        sent[rid] = (
            len(answer.json()["predictions"]),
            [p["prediction"] for p in answer.json()["predictions"]],
        )
    optional = _feature(rules, "categorical", required=False)
    number = _feature(rules, "numeric", required=False)
    for rid, (count, predictions) in sent.items():
        logged = store(rid, count)
        assert logged["row"].tolist() == list(range(count))
        assert set(logged["model_version"]) == {"1"}
        assert set(logged["arm"]) == {"stable"}
        assert logged["prediction"].tolist() == pytest.approx(predictions, rel=1e-12)
        features = logged["features"].tolist()
        assert set(features[0]) == set(rules.names)
        if count > 1:
            assert features[1][optional] is None  # missing stays missing, in every format
            assert features[0][optional] == rows[0][optional]
            assert features[2][number] is None
            assert features[0][number] == pytest.approx(rows[0][number])


# --------------------------------------------------------------------- Open Inference Protocol


@pytest.fixture(scope="module")
def triton(server: Server) -> Iterator[Any]:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    yield client
    client.close()


def _tensors(
    metadata: dict[str, Any], rows: Rows, *, binary: bool, two_d: bool = False
) -> list[Any]:
    """One tritonclient input per feature, typed as the model metadata says."""
    from tritonclient.http import InferInput

    shape = [len(rows), 1] if two_d else [len(rows)]
    tensors = []
    for spec in metadata["inputs"]:
        name, datatype = spec["name"], spec["datatype"]
        values = [row[name] for row in rows]
        if datatype == "FP64":
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        else:
            assert datatype == "BYTES", spec
            array = np.array(values, dtype=object)
        tensor = InferInput(name, shape, datatype)
        tensor.set_data_from_numpy(array.reshape(shape), binary_data=binary)
        tensors.append(tensor)
    return tensors


def _json_tensors(metadata: dict[str, Any], rows: Rows) -> list[dict[str, Any]]:
    """The same as plain OIP JSON (``null`` where a value is missing)."""
    return [
        {
            "name": spec["name"],
            "datatype": spec["datatype"],
            "shape": [len(rows)],
            "data": [row[spec["name"]] for row in rows],
        }
        for spec in metadata["inputs"]
    ]


@pytest.fixture(scope="module")
def metadata(triton: Any) -> dict[str, Any]:
    found: dict[str, Any] = triton.get_model_metadata("rent")
    return found


def test_oip_server_and_model_metadata(triton: Any, rules: InputRules) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    about = triton.get_server_metadata()
    assert about["name"] == "modelcycle"
    assert about["version"] == __version__
    assert "binary_tensor_data" in about["extensions"]
    assert triton.is_model_ready("rent")
    assert triton.is_model_ready("rent", "1")
    assert not triton.is_model_ready("rent", "2")
    assert not triton.is_model_ready("nope")
    metadata = triton.get_model_metadata("rent")
    assert metadata == triton.get_model_metadata("rent", "1")
    assert metadata["name"] == "rent"
    assert metadata["versions"] == ["1"]
    expected = {"numeric": "FP64", "categorical": "BYTES"}
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
        (r.name, expected[r.kind]) for r in rules.features
    ]
    assert all(i["shape"] == [-1] for i in metadata["inputs"])
    assert metadata["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]


def test_oip_metadata_of_unknown_model_or_version_is_404(triton: Any) -> None:
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException) as unknown:
        triton.get_model_metadata("nope")
    assert unknown.value.status() == "404"
    assert "unknown model 'nope'" in unknown.value.message()
    with pytest.raises(InferenceServerException) as version:
        triton.get_model_metadata("rent", "2")
    assert version.value.status() == "404"
    assert "version '2' is not loaded" in version.value.message()


@pytest.mark.parametrize("binary_inputs", [True, False], ids=["binary-in", "json-in"])
@pytest.mark.parametrize(
    "binary_output", [True, False, None], ids=["bin-out", "json-out", "default"]
)
def test_oip_infer_with_tritonclient(
    triton: Any,
    metadata: dict[str, Any],
    model: LoadedModel,
    rent_rows: Callable[..., Rows],
    binary_inputs: bool,
    binary_output: bool | None,
) -> None:
    """Triton's client decodes the answer whether it asked for binary outputs or JSON; the
    server answers JSON data in both cases."""
    from tritonclient.http import InferRequestedOutput

    rows = rent_rows(7, seed=21)
    outputs = (
        None
        if binary_output is None
        else [InferRequestedOutput("predict", binary_data=binary_output)]
    )
    result = triton.infer("rent", _tensors(metadata, rows, binary=binary_inputs), outputs=outputs)
    predicted = result.as_numpy("predict")
    assert predicted.shape == (len(rows),)
    np.testing.assert_allclose(predicted, _expected(model, rows), rtol=1e-9)
    answer = result.get_response()
    assert (answer["model_name"], answer["model_version"]) == ("rent", "1")


def test_oip_version_route_and_2d_tensors(
    triton: Any, metadata: dict[str, Any], model: LoadedModel, rent_rows: Callable[..., Rows]
) -> None:
    rows = rent_rows(4, seed=22)
    result = triton.infer(
        "rent", _tensors(metadata, rows, binary=True, two_d=True), model_version="1"
    )
    np.testing.assert_allclose(result.as_numpy("predict"), _expected(model, rows), rtol=1e-9)


def test_oip_unknown_model_or_version_is_404(
    triton: Any, metadata: dict[str, Any], rent_rows: Callable[..., Rows]
) -> None:
    from tritonclient.utils import InferenceServerException

    tensors = _tensors(metadata, rent_rows(2, seed=23), binary=True)
    with pytest.raises(InferenceServerException) as unknown:
        triton.infer("nope", tensors)
    assert unknown.value.status() == "404"
    assert "unknown model 'nope'" in unknown.value.message()
    with pytest.raises(InferenceServerException) as version:
        triton.infer("rent", tensors, model_version="2")
    assert version.value.status() == "404"
    assert "version '2' is not loaded" in version.value.message()


def test_oip_wrong_datatypes_are_400_naming_the_input(
    triton: Any, metadata: dict[str, Any], rules: InputRules, rent_rows: Callable[..., Rows]
) -> None:
    from tritonclient.http import InferInput
    from tritonclient.utils import InferenceServerException

    rows = rent_rows(3, seed=24)
    number = _feature(rules, "numeric", required=True)
    category = _feature(rules, "categorical", required=True)
    cases = {
        number: ("BYTES", np.array(["a", "b", "c"], dtype=object), "expected a number"),
        category: ("FP64", np.array([1.0, 2.0, 3.0]), "send it as BYTES, not FP64"),
    }
    for name, (datatype, values, phrase) in cases.items():
        tensors = [t for t in _tensors(metadata, rows, binary=True) if t.name() != name]
        wrong = InferInput(name, [3], datatype)
        wrong.set_data_from_numpy(values, binary_data=True)
        with pytest.raises(InferenceServerException) as refused:
            triton.infer("rent", [*tensors, wrong])
        assert refused.value.status() == "400", refused.value.message()
        assert name in refused.value.message()
        assert phrase in refused.value.message()


def _oip_post(server: Server, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/rent/infer", json=body, headers=headers)


def test_oip_malformed_tensors_are_4xx_with_a_clear_message(
    server: Server, metadata: dict[str, Any], rules: InputRules, rent_rows: Callable[..., Rows]
) -> None:
    rows = rent_rows(3, seed=25)
    number = _feature(rules, "numeric", required=True)

    def changed(**fields: Any) -> list[dict[str, Any]]:
        tensors = _json_tensors(metadata, rows)
        for tensor in tensors:
            if tensor["name"] == number:
                tensor.update(fields)
        return tensors

    cases: list[tuple[Any, int, str]] = [
        (changed(shape=[2]), 400, "shape [2] does not match 3 values"),
        (changed(shape=[3, 2]), 400, "does not match"),
        (changed(data=[1.0, 2.0], shape=[2]), 400, "has 2 rows; the others have 3"),
        (changed(datatype="STRING"), 400, "unsupported datatype 'STRING'"),
        (changed(data="many"), 400, "'data' must be a list"),
        (changed(data=[None, 2.0, 3.0]), 400, "missing required value"),
        (
            [t for t in _json_tensors(metadata, rows) if t["name"] != number],
            422,
            "missing required",
        ),
        ({"inputs": "x"}, 400, "list of 'inputs'"),
    ]
    for inputs, status, phrase in cases:
        body = inputs if isinstance(inputs, dict) else {"inputs": inputs}
        answer = _oip_post(server, body)
        assert answer.status_code == status, (phrase, answer.text)
        assert phrase in answer.json()["error"], answer.json()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": number,
                    "datatype": "FP64",
                    "shape": [3],
                    "parameters": {"binary_data_size": 24},
                }
            ]
        }
    ).encode()
    for size, tail, phrase in [
        (str(len(header)), b"\0" * 8, "binary_data_size does not fit the body"),
        ("abc", b"", "bad Inference-Header-Content-Length"),
    ]:
        answer = httpx.post(
            f"{server.url}/v2/models/rent/infer",
            content=header + tail,
            headers={"Inference-Header-Content-Length": size},
        )
        assert answer.status_code == 400, answer.text
        assert phrase in answer.json()["error"]


def test_oip_missing_values(
    triton: Any,
    server: Server,
    metadata: dict[str, Any],
    model: LoadedModel,
    rules: InputRules,
    rent_rows: Callable[..., Rows],
    store: Callable[[str, int], pd.DataFrame],
) -> None:
    """How a client sends a missing optional value: ``null`` in JSON tensor data (numbers and
    strings), NaN in a binary FP64 tensor. Triton's client cannot put a null into a BYTES tensor
    (it sends ``str(None)``); an empty string is a value (an unseen category), not a null."""
    number = _feature(rules, "numeric", required=False)
    category = _feature(rules, "categorical", required=False)
    original = rent_rows(4, seed=26)
    rows = [dict(row) for row in original]
    rows[0][number] = None
    rows[1][category] = None
    expected = _expected(model, rows)

    as_json = _oip_post(server, {"id": "oip-nulls-json", "inputs": _json_tensors(metadata, rows)})
    assert as_json.status_code == 200, as_json.text
    assert as_json.json()["outputs"][0]["data"] == pytest.approx(expected.tolist(), rel=1e-9)
    logged = store("oip-nulls-json", len(rows))["features"].tolist()
    assert logged[0][number] is None
    assert logged[1][category] is None

    numbers_only = [dict(row) for row in original]  # NaN for the number, no null string
    numbers_only[0][number] = None
    result = triton.infer("rent", _tensors(metadata, numbers_only, binary=True))
    np.testing.assert_allclose(
        result.as_numpy("predict"), _expected(model, numbers_only), rtol=1e-9
    )

    empty = [dict(row, **{category: ""}) for row in numbers_only]
    triton.infer("rent", _tensors(metadata, empty, binary=True), request_id="oip-empty-string")
    assert store("oip-empty-string", len(rows))["features"].iloc[0][category] == ""


def test_oip_request_id_is_echoed_and_logged(
    triton: Any,
    server: Server,
    metadata: dict[str, Any],
    rent_rows: Callable[..., Rows],
    store: Callable[[str, int], pd.DataFrame],
) -> None:
    rows = rent_rows(3, seed=27)
    rid = f"oip-{uuid.uuid4().hex}"
    result = triton.infer("rent", _tensors(metadata, rows, binary=True), request_id=rid)
    assert result.get_response()["id"] == rid
    assert store(rid, len(rows))["row"].tolist() == [0, 1, 2]

    # the OIP id wins over an X-Request-ID header; the response header says which was used
    body = {"id": f"oip-{uuid.uuid4().hex}", "inputs": _json_tensors(metadata, rows)}
    answer = _oip_post(server, body, **{"x-request-id": "the-header-id"})
    assert answer.json()["id"] == answer.headers["x-request-id"] == body["id"]
    store(body["id"], len(rows))

    # an id that is not a sane token (spaces, too long) is replaced by a fresh one, echoed too
    body["id"] = "not a sane id"
    answer = _oip_post(server, body)
    given = answer.json()["id"]
    assert given != "not a sane id"
    assert given == answer.headers["x-request-id"]
    store(given, len(rows))
