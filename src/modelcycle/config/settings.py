"""Runtime settings: where things live and how they run, from the environment and ``.env``.

Settings are built once by an entry point (:meth:`Settings.load`) and passed down; nothing in
modelcycle reads the environment on its own. Every variable has the ``MODELCYCLE_`` prefix; paths
that are not given are derived from the project folder, so a project works from any directory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from modelcycle.config.errors import validation_error_to_config_error

ENV_PREFIX = "MODELCYCLE_"
STATE_DIRNAME = ".modelcycle"

LogLevel = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]


def _split_keys(value: Any) -> Any:
    if isinstance(value, str):
        return [SecretStr(part.strip()) for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Where modelcycle keeps its stores and logs, and how its servers run.

    Each field is read from ``MODELCYCLE_<FIELD>`` in the environment or the project's ``.env``.
    ``None`` paths and URLs are derived from ``project_dir`` after loading.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    project_dir: Path = Field(
        default_factory=Path.cwd, description="The project folder (holds modelcycle.toml)."
    )
    database_url: str | None = Field(
        default=None,
        description="Operational database (SQLAlchemy URL). Default: SQLite file in the project.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking and registry store. Default: SQLite store in the project.",
    )
    artifact_dir: Path | None = Field(
        default=None, description="Model and report artifacts. Default: <project>/.modelcycle/."
    )
    log_dir: Path | None = Field(default=None, description="Log files. Default: <project>/logs.")
    log_level: LogLevel = Field(default="INFO", description="Lowest level shown and written.")
    log_format: Literal["text", "json"] = Field(
        default="text", description="text for people, json for log shippers (one object a line)."
    )
    log_rotation: str = Field(default="10 MB", description="Rotate the log file at this size.")
    log_retention: str = Field(default="14 days", description="Delete rotated logs older than.")
    log_compression: str = Field(default="gz", description="Compress rotated log files with.")
    host: str = Field(default="127.0.0.1", description="Address the model server binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the model server binds to.")
    workers: int = Field(default=1, ge=1, le=64, description="Model server worker processes.")
    model: str | None = Field(
        default=None,
        description="Model the server loads (NAME@ALIAS or NAME/VERSION). Default: "
        "<project name>@champion.",
    )
    predict_api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated API keys allowed to predict (or their sha256:<hex> "
        "digests). Empty: predictions are open.",
    )
    admin_api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated API keys for the admin API (or sha256:<hex> digests). "
        "Empty: admin API is closed.",
    )
    max_body_bytes: int = Field(
        default=10_000_000, ge=1024, description="Largest request body the server accepts."
    )
    max_batch_rows: int = Field(
        default=10_000, ge=1, description="Most rows one prediction request may carry."
    )
    model_poll_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How often the server checks whether its alias moved (0: never).",
    )
    log_predictions: bool = Field(
        default=True,
        description="Log every prediction to the operational database (off only for "
        "benchmarks: monitoring and labels need the log).",
    )
    deployment_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often the server checks the deployment state for changes (routing "
        "reaches every worker within about this time).",
    )
    controller: bool = Field(
        default=True,
        description="Run the rollout controller inside the server (several servers may: a "
        "database lock lets one act at a time). Off: run `modelcycle controller` instead.",
    )
    spool_fsync: bool = Field(
        default=False,
        description="Flush the prediction spool to disk on every request (survives power "
        "loss, not only a crash; slower).",
    )
    alert_webhook_url: str | None = Field(
        default=None,
        description="Post every new or resolved alert here as JSON (Slack-compatible `text` "
        "field); retried with backoff, never breaks monitoring. Unset: alerts go to the log.",
    )

    _split_predict = field_validator("predict_api_keys", "admin_api_keys", mode="before")(
        _split_keys
    )

    _derived: set[str] = PrivateAttr(default_factory=set)
    _given: set[str] = PrivateAttr(default_factory=set)

    def model_post_init(self, _context: Any, /) -> None:
        """Derive every unset path and URL from the project folder."""
        self._given = set(self.model_fields_set)
        self._derived = {
            name
            for name in ("database_url", "mlflow_tracking_uri", "artifact_dir", "log_dir")
            if getattr(self, name) is None
        }
        self.project_dir = self.project_dir.expanduser().resolve()
        state = self.project_dir / STATE_DIRNAME
        if self.database_url is None:
            self.database_url = f"sqlite:///{state / 'modelcycle.db'}"
        if self.mlflow_tracking_uri is None:
            self.mlflow_tracking_uri = f"sqlite:///{state / 'mlflow.db'}"
        self.artifact_dir = (self.artifact_dir or state / "artifacts").expanduser()
        self.log_dir = (self.log_dir or self.project_dir / "logs").expanduser()
        if not self.artifact_dir.is_absolute():
            self.artifact_dir = self.project_dir / self.artifact_dir
        if not self.log_dir.is_absolute():
            self.log_dir = self.project_dir / self.log_dir

    @property
    def state_dir(self) -> Path:
        """The project's private state folder (stores, artifacts)."""
        return self.project_dir / STATE_DIRNAME

    @property
    def spool_dir(self) -> Path:
        """The server's write-ahead spool of predictions not yet in the database."""
        return self.state_dir / "spool"

    @property
    def logs(self) -> Path:
        """The log folder, always set after validation."""
        assert self.log_dir is not None
        return self.log_dir

    @classmethod
    def load(cls, project_dir: Path | None = None, **overrides: Any) -> Settings:
        """Build settings for a project: environment first, then ``<project>/.env``, then defaults.

        Args:
            project_dir: The project folder; its ``.env`` is read. Default: the current folder
                (or ``MODELCYCLE_PROJECT_DIR``).
            **overrides: Values given on the command line; they win over everything.

        Raises:
            ConfigError: A variable has a bad value; the message names the variable.
        """
        base = project_dir or Path(os.environ.get(f"{ENV_PREFIX}PROJECT_DIR") or Path.cwd())
        env_file = base / ".env"
        values = {k: v for k, v in overrides.items() if v is not None}
        if project_dir is not None:
            values.setdefault("project_dir", project_dir)
        try:
            return cls(_env_file=env_file if env_file.is_file() else None, **values)
        except ValidationError as err:
            raise validation_error_to_config_error(
                err,
                cls,
                where=f"settings (environment or {env_file})",
                key_name=lambda loc: env_name(str(loc[0])),
                fix="fix the variable in the environment or .env; see .env.example",
            ) from None

    def sources(self) -> dict[str, str]:
        """Where each setting's value came from: ``environment``, ``.env`` or ``default``."""
        env_file = self.project_dir / ".env"
        dotenv = (
            {k.upper(): v for k, v in dotenv_values(env_file).items()} if env_file.is_file() else {}
        )
        found: dict[str, str] = {}
        for name in type(self).model_fields:
            var = env_name(name)
            if var in os.environ:
                found[name] = "environment"
            elif var in dotenv:
                found[name] = f".env ({env_file})"
            elif name in self._derived:
                found[name] = "derived from MODELCYCLE_PROJECT_DIR"
            elif name in self._given:
                found[name] = "command line"
            else:
                found[name] = "default"
        return found

    def display(self) -> list[tuple[str, str, str]]:
        """Rows of (variable, effective value with secrets masked, source) for ``config show``."""
        sources = self.sources()
        rows = []
        for name in type(self).model_fields:
            rows.append((env_name(name), mask(getattr(self, name)), sources[name]))
        return rows


def env_name(field: str) -> str:
    """The environment variable for a settings field."""
    return f"{ENV_PREFIX}{field.upper()}"


def mask(value: Any) -> str:
    """Render a setting for display; secrets (and passwords inside URLs) are masked."""
    if isinstance(value, SecretStr):
        return "********" if value.get_secret_value() else ""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(mask(v) for v in value) if value else "(none)"
    text = str(value)
    if "://" in text and "@" in text:
        scheme, rest = text.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":********"
        text = f"{scheme}://{creds}@{host}"
    return text


def settings_fields() -> list[tuple[str, Any, str]]:
    """(variable, default, description) for every setting; used to write ``.env.example``."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = None if field.default_factory is not None else field.default
        rows.append((env_name(name), default, field.description or ""))
    return rows
