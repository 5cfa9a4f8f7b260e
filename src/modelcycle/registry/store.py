"""The model registry on MLflow: register bundles, set aliases, and load them digest-verified.

One registered MLflow model per project; each version is a modelcycle bundle (see
:mod:`modelcycle.registry.manifest` for its files and why the pipeline is stored with skops, not
pickle) logged as an MLflow pyfunc with "models from code"
(:mod:`modelcycle.registry.pyfunc_model`), so any MLflow client can load it with
``mlflow.pyfunc.load_model("models:/<name>/<version>")``.

Every version is tagged with the sha256 of its ``manifest.json``; the manifest holds the sha256
of every other file. :func:`load_model` checks the manifest against the tag and every file against
the manifest *before* anything is deserialised, and refuses a tampered artifact naming the file.

Aliases: the first version of a model becomes ``champion``, later ones ``challenger`` (the newest
version holds it). ``previous`` is left for the deployment stage (the champion it replaced, for
rollbacks); modelcycle's registry never sets it on its own.

References (``ref``) are ``NAME`` (the champion, else the latest version), ``NAME@ALIAS``,
``NAME/VERSION`` or ``models:/NAME/VERSION`` / ``models:/NAME@ALIAS``.

MLflow is imported inside the functions, so importing modelcycle stays fast; the MLflow plumbing
(clients, the process-global URI, retries on a busy SQLite store) is in
:mod:`modelcycle.registry._mlflow`.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from loguru import logger

from modelcycle.data.schema import FeatureSchema
from modelcycle.errors import DataError, plural
from modelcycle.registry._mlflow import (
    ensure_experiment_id,
    logging_run,
    pyfunc_signature,
    retry_busy,
    sqlite_path,
    store_client,
)
from modelcycle.registry.bundle import ModelBundle, predict_frame
from modelcycle.registry.card import format_value, render_card, winner_key
from modelcycle.registry.manifest import (
    ARTIFACT_KEYS,
    MANIFEST_SHA_KEY,
    RegistryError,
    VerifiedBundle,
    bundle_paths,
    library_versions,
    verify_bundle,
    write_bundle,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

    from modelcycle.monitoring.ood import OODDetector

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PREVIOUS",
    "Comparison",
    "LoadedModel",
    "ModelRef",
    "ModelSummary",
    "RegisteredVersion",
    "RegistryError",
    "VersionInfo",
    "compare",
    "describe",
    "ensure_experiment",
    "list_models",
    "load_model",
    "parse_ref",
    "register",
    "set_alias",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"
"""Reserved for the deployment stage (the champion a promotion replaced); never set here."""

MODEL_ARTIFACT = "model"
"""Name of the logged MLflow model inside its run."""
PYFUNC_FILE = Path(__file__).with_name("pyfunc_model.py")
PIP_PACKAGES = (
    "modelcycle",
    "mlflow",
    "scikit-learn",
    "lightgbm",
    "skops",
    "pandas",
    "numpy",
    "scipy",
    "imbalanced-learn",
)
"""Pinned in the logged model's requirements: the pyfunc runs modelcycle's own code."""

TAG_MANIFEST = "manifest_sha256"
TAG_DATA = "data_digest"
TAG_SPEC = "spec_hash"
TAG_CANDIDATE = "candidate"
TAG_TASK = "task"
TAG_METRIC = "metric"
TAG_METRIC_VALUE = "metric_value"
TAG_BASELINE = "baseline"
TAG_BASELINE_VALUE = "baseline_value"
TAG_MODELCYCLE = "modelcycle_version"

_ALIAS_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_REF_PATTERN = re.compile(r"(?P<name>[^/@'\"\s]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))?")


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference: a name and at most one of a version or an alias."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}/{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version just registered.

    Attributes:
        name: Registered model name.
        version: Its new version number.
        aliases: Aliases it holds (``champion`` or ``challenger``; none if a newer version
            registered at the same time took ``challenger``).
        run_id: The MLflow run the model was logged in.
        model_uri: ``models:/<name>/<version>``.
        manifest_sha256: Digest of its manifest, also a version tag.
    """

    name: str
    version: int
    aliases: list[str]
    run_id: str
    model_uri: str
    manifest_sha256: str


@dataclass
class LoadedModel:
    """A registered model version, verified and loaded, ready to predict.

    Attributes:
        name: Registered model name.
        version: Version number.
        aliases: Aliases the version holds.
        task: ``regression`` or ``classification``.
        metric: The deciding metric.
        threshold: Decision threshold (binary classification).
        classes: Class labels in probability order (classification).
        schema: The FeatureSchema.
        profile: The reference profile of the training data.
        metrics: Test metrics per model (the registered one and the baselines).
        baseline: Name of the best baseline in ``metrics``.
        candidate: The candidate's name, e.g. ``lgbm``.
        params: Its hyper-parameters.
        slices: Per-slice test metrics.
        card: The model card (Markdown).
        manifest: The bundle manifest (digests, library versions, ...).
        pipeline: The fitted pipeline.
        run_id: The MLflow run the model was logged in.
        tags: The version's registry tags.
        ood: The OOD detector (:class:`~modelcycle.monitoring.ood.OODDetector`); ``None`` for
            bundles without one.
    """

    name: str
    version: int
    aliases: list[str]
    task: Literal["regression", "classification"]
    metric: str
    threshold: float | None
    classes: list[Any] | None
    schema: FeatureSchema
    profile: dict[str, Any]
    metrics: dict[str, dict[str, float | None]]
    baseline: str
    candidate: str
    params: dict[str, Any]
    slices: list[dict[str, Any]]
    card: str
    manifest: dict[str, Any]
    pipeline: Any = field(repr=False)
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    ood: OODDetector | None = field(default=None, repr=False)

    @property
    def ref(self) -> str:
        """``name/version``."""
        return f"{self.name}/{self.version}"

    @property
    def feature_names(self) -> list[str]:
        """The input columns, in order."""
        return self.schema.input_names

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predict on a DataFrame of features by name (extra columns are ignored).

        Returns:
            ``prediction`` (and ``proba_<class>`` columns for classification), same index.

        Raises:
            DataError: Feature columns are missing.
        """
        missing = [c for c in self.feature_names if c not in frame.columns]
        if missing:
            raise DataError(
                f"the data lacks {plural(len(missing), 'feature column')} of {self.ref}: "
                f"{', '.join(missing)}",
                "pass every feature the model was trained on (see `modelcycle models show`)",
            )
        return predict_frame(
            self.pipeline,
            frame,
            task=self.task,
            feature_names=self.feature_names,
            threshold=self.threshold,
            classes=self.classes,
        )

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """What :func:`~modelcycle.metrics.compute_metrics` takes as ``prediction``.

        Regression: the predicted values. Binary classification: the positive-class probability.
        Multiclass: the probability matrix (columns in ``classes`` order).
        """
        out = self.predict(frame)
        if self.task == "regression":
            return out["prediction"].to_numpy(dtype="float64")
        proba = out[[c for c in out.columns if c.startswith("proba_")]].to_numpy(dtype="float64")
        return proba[:, 1] if proba.shape[1] == 2 else proba


@dataclass
class ModelSummary:
    """One registered model, for ``models list``.

    Attributes:
        name: Registered model name.
        versions: Its version numbers, ascending.
        aliases: Alias -> version.
        updated: When it last changed.
        description: The registered model's description.
        metric: The deciding metric of the champion (else the latest version), if tagged.
        metric_value: Its test value.
        candidate: The candidate of that version.
    """

    name: str
    versions: list[int]
    aliases: dict[str, int]
    updated: datetime | None
    description: str = ""
    metric: str | None = None
    metric_value: float | None = None
    candidate: str | None = None

    @property
    def latest(self) -> int | None:
        """The highest version number."""
        return self.versions[-1] if self.versions else None


@dataclass
class VersionInfo:
    """A registered version's metadata and verified bundle files (the pipeline is not loaded).

    Attributes:
        name: Registered model name.
        version: Version number.
        aliases: Aliases it holds.
        created: When it was registered.
        run_id: The MLflow run it was logged in.
        source: Where MLflow keeps its artifacts.
        status: MLflow's version status (``READY``).
        description: The version description.
        tags: Registry tags.
        bundle: The verified bundle files.
    """

    name: str
    version: int
    aliases: list[str]
    created: datetime | None
    run_id: str | None
    source: str
    status: str
    description: str
    tags: dict[str, str]
    bundle: VerifiedBundle

    @property
    def ref(self) -> str:
        """``name/version``."""
        return f"{self.name}/{self.version}"

    @property
    def info(self) -> dict[str, Any]:
        """The content of ``metrics.json``."""
        return self.bundle.info

    @property
    def schema(self) -> FeatureSchema:
        """The FeatureSchema."""
        return self.bundle.schema


@dataclass
class Comparison:
    """Two model versions scored on the same data.

    Attributes:
        refs: ``(name/version, name/version)`` of the two models.
        task: Their task.
        metric: The deciding metric (of the first model).
        metrics: Per ref, every metric of the task.
        rows: Rows scored.
    """

    refs: tuple[str, str]
    task: Literal["regression", "classification"]
    metric: str
    metrics: dict[str, dict[str, float]]
    rows: int

    def better(self, metric: str) -> str | None:
        """The ref with the better value of ``metric``; ``None`` on a tie or a missing value."""
        from modelcycle.metrics import higher_is_better

        a, b = (self.metrics[r].get(metric, float("nan")) for r in self.refs)
        if not (np.isfinite(a) and np.isfinite(b)) or a == b:
            return None
        first_wins = (a > b) == higher_is_better(metric)
        return self.refs[0] if first_wins else self.refs[1]


def parse_ref(ref: str) -> ModelRef:
    """Parse ``NAME``, ``NAME@ALIAS``, ``NAME/VERSION`` or ``models:/NAME/VERSION``.

    Raises:
        RegistryError: The reference has another shape, or the version is not a number.
    """
    text = ref.strip()
    if text.startswith("models:/"):
        text = text[len("models:/") :]
    match = _REF_PATTERN.fullmatch(text)
    if match is None:
        raise RegistryError(
            f"{ref!r} is not a model reference",
            "write NAME, NAME@ALIAS (e.g. rent@champion), NAME/VERSION (e.g. rent/2) or "
            "models:/NAME/VERSION",
        )
    version = match["version"]
    if version is not None and not (version.isdigit() and int(version) > 0):
        raise RegistryError(
            f"{ref!r}: version {version!r} is not a positive whole number",
            f"write {match['name']}/VERSION (e.g. {match['name']}/1) or {match['name']}@ALIAS",
        )
    return ModelRef(match["name"], int(version) if version else None, match["alias"])


# --------------------------------------------------------------------------------- registering


def register(
    bundle: ModelBundle,
    *,
    tracking_uri: str,
    artifact_dir: Path,
    run_id: str | None = None,
) -> RegisteredVersion:
    """Register ``bundle`` as a new version of the model ``bundle.name``.

    The bundle's files are written and digested, logged as an MLflow pyfunc (models from code)
    with a signature and an input example, and registered with tags (manifest digest, data
    digest, spec hash, candidate, deciding metric and its value). The first version becomes
    ``champion``, later ones ``challenger``.

    The model is logged into the active MLflow run when there is one (``train`` calls this inside
    its parent run), else into run ``run_id``, else into a new run. Runs without an active run
    use the experiment named after the model, whose artifacts live in ``<artifact_dir>/mlflow``.

    Args:
        bundle: The trained model.
        tracking_uri: The MLflow tracking and registry store.
        artifact_dir: The project's artifact folder (``Settings.artifact_dir``).
        run_id: A run to log into when no run is active.

    Returns:
        The new version, its aliases and URI.

    Raises:
        RegistryError: The store cannot be reached, or the bundle cannot be saved safely.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    _check_name(bundle.name)
    features = bundle.schema.input_names
    missing = [c for c in features if c not in bundle.input_example.columns]
    if missing:
        raise RegistryError(
            f"the input example of {bundle.name!r} lacks the feature columns {', '.join(missing)}",
            "build the input example from the training features",
        )
    example = bundle.input_example[features]
    with tempfile.TemporaryDirectory(prefix="modelcycle-bundle-") as tmp:
        folder = Path(tmp) / "bundle"
        libraries = library_versions()
        card = render_card(bundle, libraries=libraries)
        manifest, manifest_sha = write_bundle(bundle, folder, card=card, libraries=libraries)
        output = predict_frame(
            bundle.pipeline,
            example,
            task=bundle.task,
            feature_names=features,
            threshold=bundle.threshold,
            classes=bundle.classes,
        )
        signature = pyfunc_signature(example, output, bundle.schema)
        artifacts = {
            key: str(folder / name)
            for key, name in ARTIFACT_KEYS.items()
            if (folder / name).is_file()
        }
        requirements = [
            f"{name}=={ver}"
            for name, ver in manifest["libraries"].items()
            if name in PIP_PACKAGES and ver != "-"
        ]
        tags = _version_tags(bundle, manifest_sha)
        with store_client(tracking_uri, create=True) as client:
            experiment = partial(
                ensure_experiment_id, client, bundle.name, tracking_uri, artifact_dir
            )
            with logging_run(client, experiment, run_id, bundle.name) as logged_run_id:
                info = retry_busy(
                    lambda: mlflow.pyfunc.log_model(
                        name=MODEL_ARTIFACT,
                        python_model=str(PYFUNC_FILE),
                        artifacts=artifacts,
                        signature=signature,
                        input_example=example,
                        pip_requirements=requirements,
                        model_config={MANIFEST_SHA_KEY: manifest_sha},
                        tags={TAG_MANIFEST: manifest_sha},
                    )
                )
            retry_busy(lambda: _create_registered_model(client, bundle.name, MlflowException))
            created = retry_busy(
                lambda: client.create_model_version(
                    name=bundle.name,
                    source=info.model_uri,
                    run_id=logged_run_id,
                    tags=tags,
                    description=_description(bundle),
                    model_id=info.model_id,
                )
            )
            version = int(created.version)
            aliases = _assign_default_alias(client, bundle.name, version)
    logger.bind(model=bundle.name, version=version).debug(
        "registered {} version {} ({})", bundle.name, version, ", ".join(aliases) or "no alias"
    )
    return RegisteredVersion(
        name=bundle.name,
        version=version,
        aliases=aliases,
        run_id=logged_run_id,
        model_uri=f"models:/{bundle.name}/{version}",
        manifest_sha256=manifest_sha,
    )


def register_copy(
    model: LoadedModel,
    pipeline: Any,
    input_example: pd.DataFrame,
    *,
    tracking_uri: str,
    artifact_dir: Path,
    note: str = "",
) -> RegisteredVersion:
    """Register ``pipeline`` as a new version with ``model``'s metadata (schema, profile, OOD, ...).

    For variants of a trained version — the demo's deliberately bad version, tests that need
    more versions — without a training run.

    Args:
        model: The loaded version whose metadata the copy keeps.
        pipeline: The pipeline of the new version.
        input_example: A few rows of features, for the MLflow signature.
        tracking_uri: The registry.
        artifact_dir: Where MLflow keeps artifacts.
        note: Recorded with the version (``extra.note``).
    """
    from modelcycle.registry.bundle import ModelBundle

    bundle = ModelBundle(
        name=model.name,
        pipeline=pipeline,
        schema=model.schema,
        task=model.task,
        metric=model.metric,
        metrics={
            name: {k: v for k, v in values.items() if v is not None}
            for name, values in model.metrics.items()
        },
        baseline=model.baseline,
        profile=model.profile,
        candidate=model.candidate,
        params=model.params,
        data_digest=model.manifest["data_digest"],
        spec_hash=model.manifest["spec_hash"],
        training_rows=model.manifest["training_rows"],
        input_example=input_example,
        threshold=model.threshold,
        classes=model.classes,
        slices=model.slices,
        extra={"copy_of": model.ref, **({"note": note} if note else {})},
        ood=model.ood,
    )
    return register(bundle, tracking_uri=tracking_uri, artifact_dir=artifact_dir)


def ensure_experiment(name: str, *, tracking_uri: str, artifact_dir: Path) -> str:
    """The id of the experiment ``name``, created with its artifacts in ``<artifact_dir>/mlflow``.

    Training calls this before starting its parent run, so that run's artifacts (and the model
    registered inside it) never land in ``./mlruns`` of the current folder.

    Raises:
        RegistryError: The store cannot be reached.
    """
    with store_client(tracking_uri, create=True) as client:
        return ensure_experiment_id(client, name, tracking_uri, artifact_dir)


def set_alias(name: str, version: int, alias: str, *, tracking_uri: str) -> int | None:
    """Point ``name@alias`` at ``version``.

    Returns:
        The version that held the alias before, if any.

    Raises:
        RegistryError: Unknown model or version, or an alias MLflow does not accept.
    """
    if not _ALIAS_PATTERN.fullmatch(alias) or alias == "latest" or re.fullmatch(r"v\d+", alias):
        raise RegistryError(
            f"{alias!r} is not a valid alias",
            "use letters, digits, '_' or '-', starting with a letter; not 'latest' or 'v<number>'",
        )
    with store_client(tracking_uri, create=False) as client:
        model = _registered_model(client, name)
        _model_version(client, model, version)
        before = _aliases(model).get(alias)
        retry_busy(lambda: client.set_registered_model_alias(name, alias, str(version)))
    logger.bind(model=name, version=version).debug("alias {}@{} -> {}", name, alias, version)
    return before


# ------------------------------------------------------------------------------------ reading


def load_model(ref: str, *, tracking_uri: str) -> LoadedModel:
    """Load a registered version after checking every digest.

    Args:
        ref: ``NAME``, ``NAME@ALIAS``, ``NAME/VERSION`` or ``models:/NAME/VERSION``.
        tracking_uri: The MLflow tracking and registry store.

    Raises:
        RegistryError: Unknown model, version or alias (the message lists what exists), an
            unreachable store, or a tampered artifact (the message names the file).
    """
    parsed = parse_ref(ref)
    with store_client(tracking_uri, create=False) as client:
        version = _resolve(client, parsed)
        bundle = _fetch(client, version, tracking_uri)
    where = f"{version.name}/{version.version}"
    pipeline = bundle.load_pipeline(where)
    ood = bundle.load_ood(where)
    info = bundle.info
    return LoadedModel(
        name=version.name,
        version=int(version.version),
        aliases=list(version.aliases or []),
        task=info["task"],
        metric=info["metric"],
        threshold=info.get("threshold"),
        classes=info.get("classes"),
        schema=bundle.schema,
        profile=bundle.profile,
        metrics=info.get("metrics", {}),
        baseline=info.get("baseline", ""),
        candidate=info.get("candidate", ""),
        params=info.get("params", {}),
        slices=info.get("slices", []),
        card=bundle.card,
        manifest=bundle.manifest,
        pipeline=pipeline,
        run_id=version.run_id,
        tags=dict(version.tags or {}),
        ood=ood,
    )


def resolve_version(ref: str, *, tracking_uri: str) -> int:
    """The version number a reference names now (an alias may move), without loading anything.

    Raises:
        RegistryError: As :func:`load_model`.
    """
    with store_client(tracking_uri, create=False) as client:
        return int(_resolve(client, parse_ref(ref)).version)


def describe(ref: str, *, tracking_uri: str) -> VersionInfo:
    """A version's metadata and verified bundle files, without loading its pipeline.

    Raises:
        RegistryError: As :func:`load_model`.
    """
    parsed = parse_ref(ref)
    with store_client(tracking_uri, create=False) as client:
        version = _resolve(client, parsed)
        bundle = _fetch(client, version, tracking_uri)
    return VersionInfo(
        name=version.name,
        version=int(version.version),
        aliases=list(version.aliases or []),
        created=_when(version.creation_timestamp),
        run_id=version.run_id,
        source=str(version.source),
        status=str(version.status),
        description=version.description or "",
        tags=dict(version.tags or {}),
        bundle=bundle,
    )


def list_models(tracking_uri: str) -> list[ModelSummary]:
    """Every registered model in the store, by name (none when a SQLite store does not exist yet).

    Raises:
        RegistryError: The store cannot be reached.
    """
    database = sqlite_path(tracking_uri)
    if database is not None and not database.is_file():
        return []
    with store_client(tracking_uri, create=False) as client:
        summaries = []
        for model in _all_models(client):
            versions = _versions(client, model.name)
            aliases = _aliases(model)
            numbers = sorted(int(v.version) for v in versions)
            pick = aliases.get(CHAMPION, numbers[-1] if numbers else None)
            tags = next((dict(v.tags or {}) for v in versions if int(v.version) == pick), {})
            summaries.append(
                ModelSummary(
                    name=model.name,
                    versions=numbers,
                    aliases=aliases,
                    updated=_when(model.last_updated_timestamp),
                    description=model.description or "",
                    metric=tags.get(TAG_METRIC),
                    metric_value=_float(tags.get(TAG_METRIC_VALUE)),
                    candidate=tags.get(TAG_CANDIDATE),
                )
            )
    return sorted(summaries, key=lambda s: s.name)


def compare(
    ref_a: str, ref_b: str, frame: pd.DataFrame, y: Any, *, tracking_uri: str
) -> Comparison:
    """Score two versions on the same rows with the same metrics.

    Args:
        ref_a: The first model reference.
        ref_b: The second model reference.
        frame: Feature rows (the project's test part).
        y: True targets of ``frame`` (rows with a missing target are left out).
        tracking_uri: The MLflow tracking and registry store.

    Raises:
        RegistryError: A bad reference, or two models of different tasks.
        DataError: The rows lack features of a model, or there are none.
    """
    from modelcycle.metrics import compute_metrics

    first = load_model(ref_a, tracking_uri=tracking_uri)
    second = load_model(ref_b, tracking_uri=tracking_uri)
    if first.task != second.task:
        raise RegistryError(
            f"{first.ref} is a {first.task} model and {second.ref} a {second.task} model",
            "compare versions of the same task",
        )
    truth = pd.Series(np.asarray(y), index=frame.index)
    keep = truth.notna().to_numpy()
    rows, truth = frame.loc[keep], truth[keep]
    if not len(rows):
        raise DataError(
            "there are no rows with a target to compare the models on", "check the data"
        )
    scores: dict[str, dict[str, float]] = {}
    for model in (first, second):
        scores[model.ref] = compute_metrics(
            model.task,
            truth.to_numpy(),
            model.scores(rows),
            threshold=model.threshold if model.threshold is not None else 0.5,
            classes=model.classes,
        )
    return Comparison(
        refs=(first.ref, second.ref),
        task=first.task,
        metric=first.metric,
        metrics=scores,
        rows=len(rows),
    )


# ------------------------------------------------------------------------------------ helpers


def _create_registered_model(
    client: MlflowClient, name: str, exists_error: type[Exception]
) -> None:
    try:
        client.create_registered_model(
            name, description=f"modelcycle project {name!r}: one version per registered bundle."
        )
    except exists_error as err:
        if "already exists" not in str(err).lower():
            raise


def _assign_default_alias(client: MlflowClient, name: str, version: int) -> list[str]:
    """``champion`` for the model's first version, else ``challenger`` if no newer version has it.

    Decided from the stored versions, not from who holds ``champion``: two registrations racing
    on a new model cannot both become champion.
    """
    numbers = sorted(int(v.version) for v in _versions(client, name))
    if numbers and numbers[0] == version:
        retry_busy(lambda: client.set_registered_model_alias(name, CHAMPION, str(version)))
        return [CHAMPION]
    for _ in range(3):  # re-check: a newer version registered at the same time keeps it
        holder = _aliases(client.get_registered_model(name)).get(CHALLENGER)
        if holder is not None and holder >= version:
            return [CHALLENGER] if holder == version else []
        retry_busy(lambda: client.set_registered_model_alias(name, CHALLENGER, str(version)))
    return [CHALLENGER]


def _version_tags(bundle: ModelBundle, manifest_sha: str) -> dict[str, str]:
    from modelcycle import __version__

    metrics = bundle.metrics
    own = metrics.get(winner_key(metrics, bundle.candidate, bundle.baseline), {})
    base = metrics.get(bundle.baseline, {})
    tags = {
        TAG_MANIFEST: manifest_sha,
        TAG_DATA: bundle.data_digest,
        TAG_SPEC: bundle.spec_hash,
        TAG_CANDIDATE: bundle.candidate,
        TAG_TASK: bundle.task,
        TAG_METRIC: bundle.metric,
        TAG_METRIC_VALUE: _tag_number(own.get(bundle.metric)),
        TAG_BASELINE: bundle.baseline,
        TAG_BASELINE_VALUE: _tag_number(base.get(bundle.metric)),
        TAG_MODELCYCLE: __version__,
    }
    return {k: v for k, v in tags.items() if v}


def _description(bundle: ModelBundle) -> str:
    metrics = bundle.metrics
    own = metrics.get(winner_key(metrics, bundle.candidate, bundle.baseline), {})
    base = metrics.get(bundle.baseline, {})
    return (
        f"{bundle.candidate}: test {bundle.metric} {format_value(own.get(bundle.metric))} "
        f"(baseline {bundle.baseline}: {format_value(base.get(bundle.metric))}); "
        f"{bundle.training_rows:,} training rows"
    )


def _tag_number(value: Any) -> str:
    number = _float(value)
    return "" if number is None else repr(number)


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _check_name(name: str) -> None:
    from modelcycle.config.spec import NAME_PATTERN

    if not NAME_PATTERN.fullmatch(name):
        raise RegistryError(
            f"{name!r} is not a valid model name",
            "use letters, digits, '_', '.' or '-', starting with a letter or digit",
        )


def _all_models(client: MlflowClient) -> list[RegisteredModel]:
    found: list[RegisteredModel] = []
    token: str | None = None
    while True:
        page = client.search_registered_models(max_results=200, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def _versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    found: list[ModelVersion] = []
    token: str | None = None
    while True:
        page = client.search_model_versions(
            filter_string=f"name = '{name}'", max_results=1000, page_token=token
        )
        found.extend(page)
        token = page.token
        if not token:
            return found


def _aliases(model: RegisteredModel) -> dict[str, int]:
    return {str(alias): int(version) for alias, version in (model.aliases or {}).items()}


def _registered_model(client: MlflowClient, name: str) -> RegisteredModel:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    names = sorted(m.name for m in _all_models(client))
    listed = ", ".join(names) if names else "none yet"
    raise RegistryError(
        f"there is no registered model {name!r} (registered models: {listed})",
        "check the name (`modelcycle models list`), or train and register one with "
        "`modelcycle train`",
    )


def _model_version(client: MlflowClient, model: RegisteredModel, version: int) -> ModelVersion:
    numbers = sorted(int(v.version) for v in _versions(client, model.name))
    if version not in numbers:
        listed = ", ".join(map(str, numbers)) if numbers else "none"
        raise RegistryError(
            f"model {model.name!r} has no version {version} (versions: {listed})",
            f"pick one of them, e.g. {model.name}/{numbers[-1] if numbers else 1}",
        )
    return client.get_model_version(model.name, str(version))


def _resolve(client: MlflowClient, ref: ModelRef) -> ModelVersion:
    """The version a reference names; a bare name means the champion, else the latest."""
    model = _registered_model(client, ref.name)
    aliases = _aliases(model)
    if ref.version is not None:
        return _model_version(client, model, ref.version)
    if ref.alias is not None:
        if ref.alias not in aliases:
            listed = (
                ", ".join(f"{a} → {v}" for a, v in sorted(aliases.items())) if aliases else "none"
            )
            raise RegistryError(
                f"model {ref.name!r} has no alias {ref.alias!r} (aliases: {listed})",
                f"use one of them, or set it with `modelcycle models alias set {ref.name} "
                f"VERSION {ref.alias}`",
            )
        return _model_version(client, model, aliases[ref.alias])
    if CHAMPION in aliases:
        return _model_version(client, model, aliases[CHAMPION])
    numbers = sorted(int(v.version) for v in _versions(client, ref.name))
    if not numbers:
        raise RegistryError(
            f"model {ref.name!r} has no versions", "train and register one with `modelcycle train`"
        )
    return _model_version(client, model, numbers[-1])


def _fetch(client: MlflowClient, version: ModelVersion, tracking_uri: str) -> VerifiedBundle:
    """Download a version's bundle files and verify them against the manifest and its tag."""
    import mlflow

    where = f"{version.name}/{version.version}"
    expected = (version.tags or {}).get(TAG_MANIFEST)
    if not expected:
        raise RegistryError(
            f"{where} was not registered by modelcycle (it has no {TAG_MANIFEST} tag)",
            "load it with mlflow.pyfunc.load_model, or register it with `modelcycle train`",
        )
    location = client.get_model_version_download_uri(version.name, str(version.version))
    with tempfile.TemporaryDirectory(prefix="modelcycle-load-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{location.rstrip('/')}/artifacts",
                dst_path=tmp,
                tracking_uri=tracking_uri,
            )
        except Exception as err:
            raise RegistryError(
                f"the artifacts of {where} cannot be read from {location}: "
                f"{str(err).splitlines()[0] if str(err) else type(err).__name__}",
                "the artifact store was moved or deleted; check MODELCYCLE_ARTIFACT_DIR",
            ) from None
        return verify_bundle(bundle_paths(Path(local)), where=where, manifest_sha256=expected)


def _when(millis: int | None) -> datetime | None:
    return datetime.fromtimestamp(millis / 1000, tz=UTC) if millis else None
