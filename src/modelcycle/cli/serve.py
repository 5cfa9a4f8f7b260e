"""``modelcycle serve``: run the model server (native JSON, MLflow and Open Inference Protocol)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from modelcycle.cli._shared import STATE, console


def serve(
    model: Annotated[
        str | None,
        typer.Option(
            help="NAME@ALIAS or NAME/VERSION (default: MODELCYCLE_MODEL, else the "
            "project's champion)."
        ),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: settings.host).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default: settings.port).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Worker processes (default: settings.workers)."),
    ] = None,
) -> None:
    """Serve a registered model over HTTP, logging every prediction durably.

    Endpoints: POST /predict, /labels, /invocations (MLflow), /v2/... (Open Inference Protocol),
    GET /health/live, /health/ready, /models, /metrics, /docs.
    """
    import uvicorn

    from modelcycle.registry.store import resolve_version

    settings = STATE.settings()
    overrides = {
        key: value
        for key, value in {"host": host, "port": port, "workers": workers, "model": model}.items()
        if value is not None
    }
    if overrides:
        settings = settings.model_copy(update=overrides)
    ref = settings.model or f"{STATE.project().spec.name}@champion"
    assert settings.mlflow_tracking_uri is not None
    version = resolve_version(ref, tracking_uri=settings.mlflow_tracking_uri)  # fails clearly
    console.print(
        f"Serving [bold]{ref}[/] (version {version}) on http://{settings.host}:{settings.port} "
        f"with {settings.workers} worker(s); API docs at /docs. Ctrl+C stops.",
        highlight=False,
    )
    options = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
        "timeout_graceful_shutdown": 10,
    }
    if settings.workers == 1:
        from modelcycle.serving.app import create_app

        uvicorn.run(create_app(settings, ref), **options)  # type: ignore[arg-type]
        return
    os.environ["MODELCYCLE_PROJECT_DIR"] = str(settings.project_dir)
    os.environ["MODELCYCLE_MODEL"] = ref
    for key, value in overrides.items():
        os.environ[f"MODELCYCLE_{key.upper()}"] = str(value)
    uvicorn.run(
        "modelcycle.serving.app:app_from_env",
        factory=True,
        workers=settings.workers,
        **options,  # type: ignore[arg-type]
    )
