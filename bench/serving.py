"""Benchmark: single-row HTTP predictions, modelcycle vs ``mlflow models serve`` vs a no-op app.

Trains the rent example once with LightGBM and once with a random forest (registered as rent/1
and rent/2), then load-tests, one after another on 127.0.0.1 with ``wrk`` (Debian package
``wrk``) for ``--seconds`` each at every ``--concurrency``:

- a no-op uvicorn app (uvloop + httptools) answering a fixed JSON: the floor;
- ``modelcycle serve`` with prediction logging on (the default) and off;
- ``mlflow models serve --env-manager local`` on the same registered model;
- BentoML 1.4, if it is installed in this environment (it is not a dependency).

and prints requests/s, p50 and p99 per server, with ratios against MLflow and against the floor
measured in the same run. One worker per server; the load generator shares the 2 cores.
Batch throughput is measured by ``bench/batch_predict.py``.

    .venv/bin/python bench/serving.py [--seconds 15] [--concurrency 1,16] [--models lgbm,rf]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROW = {
    "area": 80.7,
    "construction_year": 2003.0,
    "rooms": 3,
    "bedrooms": 2,
    "bathrooms": 1.0,
    "balcony": "yes",
    "storage": "no",
    "parking": "no",
    "furnished": "no",
    "garage": "no",
    "garden": "no",
    "energy": "B",
    "facilities": "dryer",
    "neighborhood": "Zuidoost",
}
NOOP_APP = """
from fastapi import FastAPI, Request
from fastapi.responses import Response
app = FastAPI()
@app.post("/predict")
async def predict(request: Request) -> Response:
    await request.body()
    return Response(b'{"predictions":[0.0]}', media_type="application/json")
@app.get("/health/ready")
async def ready() -> dict:
    return {}
"""


@dataclass
class Result:
    """One load test."""

    server: str
    model: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early ({url})")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server not ready: {url}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wrk(
    url: str, body: str, concurrency: int, seconds: int, workdir: Path
) -> tuple[float, float, float, int]:
    """Requests/s, p50 ms, p99 ms and non-2xx count from one wrk run."""
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    threads = 1 if concurrency < 4 else 2
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, _latency(out, "50%"), _latency(out, "99%"), int(errors.group(1)) if errors else 0


def _latency(out: str, label: str) -> float:
    match = re.search(rf"{re.escape(label)}\s+([\d.]+)(us|ms|s)", out)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def train_models(root: Path, models: list[str], rows: int) -> dict[str, int]:
    """Train and register one version per candidate; returns candidate → version."""
    from modelcycle.config.settings import Settings
    from modelcycle.config.spec import load_project, parse_budget
    from modelcycle.scaffold import init_project
    from modelcycle.training.train import TrainOptions, train

    init_project(root, example="rent", rows=rows, seed=5)
    spec = root / "modelcycle.toml"  # register every candidate: this bench is about serving
    spec.write_text(re.sub(r"(?m)^margin = [^\n]*", "margin = 0.0", spec.read_text()))
    versions = {}
    for candidate in models:
        options = TrainOptions(budget=parse_budget("2 trials"), candidates=[candidate], track=False)
        outcome = train(load_project(root), Settings.load(root), options)
        if outcome.registered is None:
            print(f"{candidate} was not registered ({outcome.evaluation.reason}): skipped")
            continue
        versions[candidate] = outcome.registered.version
        print(f"trained {candidate}: rent/{outcome.registered.version}", flush=True)
    return versions


def run_server(
    name: str, command: list[str], env: dict[str, str], ready: str
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_ready(ready, process)
    print(f"started {name}", flush=True)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--models", default="lgbm,rf")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--skip-mlflow", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    levels = [int(c) for c in args.concurrency.split(",")]
    models = [m.strip() for m in args.models.split(",") if m.strip()]

    from loguru import logger

    logger.remove()  # training's debug lines would drown the table
    work = Path(tempfile.mkdtemp(prefix="mc-bench-serving-"))
    root = work / "rent"
    versions = train_models(root, models, args.rows)
    tracking = f"sqlite:///{root / '.modelcycle' / 'mlflow.db'}"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MODELCYCLE_")}
    python = sys.executable
    results: list[Result] = []
    native_body = json.dumps(ROW)
    mlflow_body = json.dumps({"dataframe_records": [ROW]})

    def measure(
        server: str, model: str, process: subprocess.Popen[bytes], url: str, body: str
    ) -> None:
        try:
            for concurrency in levels:
                wrk(url, body, concurrency, 3, work)  # warm-up
                rps, p50, p99, errors = wrk(url, body, concurrency, args.seconds, work)
                results.append(Result(server, model, concurrency, rps, p50, p99, errors))
                print(
                    f"  {server:<28} {model:<5} c={concurrency:<3} {rps:8.0f}/s  p50 {p50:7.2f} ms"
                    f"  p99 {p99:7.2f} ms  errors {errors}",
                    flush=True,
                )
        finally:
            stop(process)

    noop = work / "noop.py"
    noop.write_text(NOOP_APP)
    port = free_port()
    process = run_server(
        "no-op uvicorn",
        [
            python,
            "-m",
            "uvicorn",
            "noop:app",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--app-dir",
            str(work),
        ],
        base_env,
        f"http://127.0.0.1:{port}/health/ready",
    )
    measure("no-op uvicorn (floor)", "-", process, f"http://127.0.0.1:{port}/predict", native_body)

    for candidate, version in versions.items():
        for logging in (True, False):
            port = free_port()
            env = {**base_env, "MODELCYCLE_LOG_PREDICTIONS": str(logging).lower()}
            label = f"modelcycle serve, log {'on' if logging else 'off'}"
            process = run_server(
                label,
                [
                    python,
                    "-m",
                    "modelcycle",
                    "--project",
                    str(root),
                    "-q",
                    "serve",
                    "--model",
                    f"rent/{version}",
                    "--port",
                    str(port),
                ],
                env,
                f"http://127.0.0.1:{port}/health/ready",
            )
            measure(label, candidate, process, f"http://127.0.0.1:{port}/predict", native_body)
        if args.skip_mlflow:
            continue
        port = free_port()
        env = {
            **base_env,
            "MLFLOW_TRACKING_URI": tracking,
            "MLFLOW_REGISTRY_URI": tracking,
            "PATH": f"{Path(python).parent}{os.pathsep}{base_env.get('PATH', '')}",  # its uvicorn
        }
        process = run_server(
            "mlflow models serve",
            [
                python,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                f"models:/rent/{version}",
                "--env-manager",
                "local",
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
            ],
            env,
            f"http://127.0.0.1:{port}/ping",
        )
        measure(
            "mlflow models serve",
            candidate,
            process,
            f"http://127.0.0.1:{port}/invocations",
            mlflow_body,
        )
    try:
        import bentoml  # noqa: F401
    except ImportError:
        print("BentoML is not installed in this environment: skipped")

    report(results, levels)


def report(results: list[Result], levels: list[int]) -> None:
    print("\nsingle-row predictions over loopback, one worker, wrk on the same 2 cores")
    print(
        f"{'server':<30}{'model':<7}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'vs mlflow':>11}{'vs floor':>10}"
    )
    for r in results:
        mlflow = next(
            (
                m
                for m in results
                if m.server == "mlflow models serve"
                and m.model == r.model
                and m.concurrency == r.concurrency
            ),
            None,
        )
        floor = next(
            (f for f in results if f.model == "-" and f.concurrency == r.concurrency), None
        )
        vs_mlflow = f"{r.rps / mlflow.rps:.1f}x" if mlflow and r.model != "-" else ""
        vs_floor = f"{r.rps / floor.rps:.2f}x" if floor else ""
        print(
            f"{r.server:<30}{r.model:<7}{r.concurrency:>5}{r.rps:>10.0f}{r.p50_ms:>9.2f}"
            f"{r.p99_ms:>9.2f}{vs_mlflow:>11}{vs_floor:>10}"
        )
    for candidate in sorted({r.model for r in results if r.model != "-"}):
        for concurrency in levels:
            on = next(
                (
                    r
                    for r in results
                    if r.model == candidate
                    and r.concurrency == concurrency
                    and r.server.endswith("log on")
                ),
                None,
            )
            off = next(
                (
                    r
                    for r in results
                    if r.model == candidate
                    and r.concurrency == concurrency
                    and r.server.endswith("log off")
                ),
                None,
            )
            if on and off:
                print(
                    f"logging cost, {candidate} c={concurrency}: {1 - on.rps / off.rps:+.1%} of "
                    "throughput (goal < 10%)"
                )


if __name__ == "__main__":
    main()
