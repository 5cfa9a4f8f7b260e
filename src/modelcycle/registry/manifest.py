"""The model bundle on disk: its files, their sha256 digests, library versions and safe loading.

A bundle folder holds one file per part of a :class:`~modelcycle.registry.bundle.ModelBundle`::

    pipeline.skops       the fitted pipeline (preprocessing + estimator), in skops format
    ood.skops            the fitted OOD detector, in skops format (optional: older bundles and
                         bundles trained without one lack it; the manifest says which)
    schema.json          the FeatureSchema
    profile.json         the reference profile of the training data (monitoring builds on it)
    metrics.json         task, deciding metric, metrics vs baselines, slices, threshold, classes,
                         candidate and its hyper-parameters
    card.md              the model card (Markdown)
    input_example.json   a few rows of features
    manifest.json        format version, sha256 and size of every file above, library versions,
                         data digest, spec hash, creation time and the skops types we wrote

**skops, not pickle.** Unpickling runs whatever code the file names, so a pickle from an artifact
store is only as trustworthy as every hand that could write to it. skops stores the object tree
as data and refuses, at load time, every type that is not explicitly trusted; we record the
exact list of non-default types we wrote (``skops.io.get_untrusted_types``) in the manifest, and
trust that list only after the manifest's own digest (kept in the registry, outside the artifact
store) and every file's digest have been checked. Types from modules outside
:data:`TRUSTED_MODULES` are refused even then. Nothing is deserialised before the check: the
pipeline is read as bytes, hashed, and those same bytes are loaded.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelcycle import __version__
from modelcycle.data.schema import FeatureSchema
from modelcycle.errors import ModelcycleError
from modelcycle.registry.bundle import ModelBundle

BUNDLE_FORMAT = 1
"""Version of the bundle layout; a loader refuses bundles from a newer format."""

PIPELINE_FILE = "pipeline.skops"
SCHEMA_FILE = "schema.json"
PROFILE_FILE = "profile.json"
METRICS_FILE = "metrics.json"
CARD_FILE = "card.md"
INPUT_EXAMPLE_FILE = "input_example.json"
MANIFEST_FILE = "manifest.json"
OOD_FILE = "ood.skops"

ARTIFACT_KEYS: dict[str, str] = {
    "pipeline": PIPELINE_FILE,
    "ood": OOD_FILE,
    "schema": SCHEMA_FILE,
    "profile": PROFILE_FILE,
    "metrics": METRICS_FILE,
    "card": CARD_FILE,
    "input_example": INPUT_EXAMPLE_FILE,
    "manifest": MANIFEST_FILE,
}
"""MLflow artifact name -> bundle file name (the pyfunc finds its files by these names)."""

MANIFEST_SHA_KEY = "manifest_sha256"
"""The pyfunc's ``model_config`` key holding the manifest digest recorded at registration."""

OPTIONAL_FILES = (OOD_FILE,)
"""Files a bundle may lack; when the manifest records one, it must be there and match."""

DIGESTED_FILES = tuple(
    f for f in ARTIFACT_KEYS.values() if f != MANIFEST_FILE and f not in OPTIONAL_FILES
)
"""Every file whose sha256 every manifest records."""

LIBRARIES = (
    "modelcycle",
    "scikit-learn",
    "lightgbm",
    "numpy",
    "pandas",
    "scipy",
    "mlflow",
    "skops",
    "imbalanced-learn",
)
"""Distributions whose versions every bundle records (plus ``python``)."""

TRUSTED_MODULES = (
    "sklearn",
    "lightgbm",
    "imblearn",
    "numpy",
    "scipy",
    "pandas",
    "modelcycle",
    "collections",
    "builtins",
    "datetime",
)
"""Top-level modules whose types a pipeline may contain. Anything else is refused, both when a
bundle is written and when it is loaded, even if the manifest lists it."""


class RegistryError(ModelcycleError):
    """A model reference, the registry store, or a registered artifact is wrong."""


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of python and of every distribution in :data:`LIBRARIES` (``-`` when absent)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "-"
    return found


def json_ready(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python ones and NaN/inf into ``None``.

    Strict JSON has no NaN; a metric that could not be computed is stored as ``null``.
    """
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_ready(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def dump_json(value: Any) -> str:
    """Indented, strict JSON of :func:`json_ready` ``(value)``."""
    return json.dumps(json_ready(value), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def frame_to_json(frame: pd.DataFrame) -> str:
    """A small DataFrame as ``{"columns": [...], "data": [[...], ...]}`` (missing as null)."""
    rows = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    return dump_json({"columns": [str(c) for c in frame.columns], "data": rows})


def frame_from_json(text: str) -> pd.DataFrame:
    """The inverse of :func:`frame_to_json`."""
    raw = json.loads(text)
    return pd.DataFrame(raw["data"], columns=raw["columns"])


def check_trusted_types(types: list[str], where: str) -> None:
    """Refuse skops types from modules outside :data:`TRUSTED_MODULES`.

    Raises:
        RegistryError: A type comes from another module.
    """
    foreign = [t for t in types if t.split(".", 1)[0] not in TRUSTED_MODULES]
    if foreign:
        raise RegistryError(
            f"{where} contains types modelcycle does not load: {', '.join(sorted(foreign))}",
            "build the pipeline from scikit-learn, LightGBM, imbalanced-learn and modelcycle "
            "parts only",
        )


def write_bundle(
    bundle: ModelBundle, folder: Path, *, card: str, libraries: dict[str, str] | None = None
) -> tuple[dict[str, Any], str]:
    """Write a bundle's files and its manifest into ``folder``.

    Args:
        bundle: The trained model.
        folder: Where to write (created if missing).
        card: The model card's Markdown (see :mod:`modelcycle.registry.card`).
        libraries: Library versions to record; :func:`library_versions` when ``None``.

    Returns:
        The manifest and the sha256 of ``manifest.json`` as written.

    Raises:
        RegistryError: The pipeline cannot be saved with skops, or holds types from modules
            modelcycle does not load.
    """
    import skops.io as sio  # type: ignore[import-untyped]

    folder.mkdir(parents=True, exist_ok=True)
    try:
        pipeline_bytes = sio.dumps(bundle.pipeline)
    except Exception as err:  # skops raises TypeError / custom errors for unsupported objects
        raise RegistryError(
            f"the pipeline of {bundle.name!r} cannot be saved in skops format: {err}",
            "use scikit-learn, LightGBM or imbalanced-learn estimators and transformers",
        ) from None
    trusted = sorted(sio.get_untrusted_types(data=pipeline_bytes))
    check_trusted_types(trusted, f"the pipeline of {bundle.name!r}")
    ood_bytes: bytes | None = None
    ood_trusted: list[str] = []
    if bundle.ood is not None:
        ood_bytes = sio.dumps(bundle.ood)
        ood_trusted = sorted(sio.get_untrusted_types(data=ood_bytes))
        check_trusted_types(ood_trusted, f"the OOD detector of {bundle.name!r}")
    payload = {
        "task": bundle.task,
        "metric": bundle.metric,
        "metrics": bundle.metrics,
        "baseline": bundle.baseline,
        "slices": bundle.slices,
        "threshold": bundle.threshold,
        "classes": bundle.classes,
        "candidate": bundle.candidate,
        "params": bundle.params,
        "training_rows": bundle.training_rows,
        "extra": bundle.extra,
    }
    contents: dict[str, bytes] = {
        PIPELINE_FILE: pipeline_bytes,
        SCHEMA_FILE: bundle.schema.model_dump_json(indent=2).encode(),
        PROFILE_FILE: dump_json(bundle.profile).encode(),
        METRICS_FILE: dump_json(payload).encode(),
        CARD_FILE: card.encode(),
        INPUT_EXAMPLE_FILE: frame_to_json(bundle.input_example).encode(),
    }
    if ood_bytes is not None:
        contents[OOD_FILE] = ood_bytes
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    manifest = {
        "format": BUNDLE_FORMAT,
        "name": bundle.name,
        "created_at": datetime.now(UTC).isoformat(),
        "created_by": f"modelcycle {__version__}",
        "task": bundle.task,
        "metric": bundle.metric,
        "candidate": bundle.candidate,
        "data_digest": bundle.data_digest,
        "spec_hash": bundle.spec_hash,
        "training_rows": bundle.training_rows,
        "schema_fingerprint": bundle.schema.fingerprint,
        "files": {
            name: {"sha256": sha256_bytes(data), "bytes": len(data)}
            for name, data in contents.items()
        },
        "libraries": libraries if libraries is not None else library_versions(),
        "skops_trusted_types": trusted,
    }
    if ood_bytes is not None:
        manifest["ood_skops_trusted_types"] = ood_trusted
    manifest_bytes = dump_json(manifest).encode()
    (folder / MANIFEST_FILE).write_bytes(manifest_bytes)
    return manifest, sha256_bytes(manifest_bytes)


def bundle_paths(folder: Path) -> dict[str, Path]:
    """Bundle file name -> path, for a bundle folder."""
    return {name: folder / name for name in ARTIFACT_KEYS.values()}


def paths_from_artifacts(artifacts: Mapping[str, str]) -> dict[str, Path]:
    """Bundle file name -> path, from an MLflow pyfunc context's ``artifacts`` mapping."""
    return {file: Path(artifacts[key]) for key, file in ARTIFACT_KEYS.items() if key in artifacts}


@dataclass
class VerifiedBundle:
    """The parts of a bundle whose digests matched the manifest; the pipeline is not loaded yet.

    Attributes:
        manifest: The manifest.
        manifest_sha256: sha256 of ``manifest.json``.
        schema: The FeatureSchema.
        profile: The reference profile.
        info: The content of ``metrics.json`` (task, metric, metrics, baseline, slices, ...).
        card: The model card (Markdown).
        input_example: The input example rows.
        pipeline_bytes: The verified bytes of ``pipeline.skops``.
        ood_bytes: The verified bytes of ``ood.skops`` (``None``: the bundle has no detector).
    """

    manifest: dict[str, Any]
    manifest_sha256: str
    schema: FeatureSchema
    profile: dict[str, Any]
    info: dict[str, Any]
    card: str
    input_example: pd.DataFrame
    pipeline_bytes: bytes
    ood_bytes: bytes | None = None

    def load_pipeline(self, where: str = "the bundle") -> Any:
        """Deserialise the verified pipeline, trusting only the types the manifest lists.

        Raises:
            RegistryError: The manifest lists foreign types, or the file holds types it does
                not list.
        """
        return _load_skops(
            self.pipeline_bytes, self.manifest, "skops_trusted_types", PIPELINE_FILE, where
        )

    def load_ood(self, where: str = "the bundle") -> Any:
        """Deserialise the verified OOD detector (``None`` when the bundle has none).

        Raises:
            RegistryError: As :meth:`load_pipeline`.
        """
        if self.ood_bytes is None:
            return None
        return _load_skops(
            self.ood_bytes, self.manifest, "ood_skops_trusted_types", OOD_FILE, where
        )


def _load_skops(data: bytes, manifest: dict[str, Any], key: str, name: str, where: str) -> Any:
    """Load the skops file ``name`` trusting only the types the manifest lists under ``key``."""
    import skops.io as sio

    trusted = [str(t) for t in manifest.get(key, [])]
    check_trusted_types(trusted, f"{name} of {where}")
    try:
        return sio.loads(data, trusted=trusted)
    except Exception as err:
        raise RegistryError(
            f"{name} of {where} cannot be loaded: {err}",
            "the bundle is corrupt or was written by an incompatible library version; "
            "compare the manifest's library versions with yours",
        ) from None


def verify_bundle(
    files: Mapping[str, Path], *, where: str, manifest_sha256: str | None = None
) -> VerifiedBundle:
    """Check every digest of a bundle, then read its parts (everything but the pipeline).

    Args:
        files: Bundle file name -> path (:func:`bundle_paths`, :func:`paths_from_artifacts`).
        where: How messages name the bundle, e.g. ``model 'rent' version 2``.
        manifest_sha256: The manifest's digest recorded at registration (a registry tag); when
            given, a manifest that does not match it is refused before anything else.

    Raises:
        RegistryError: A file is missing, or its digest differs from the recorded one; the
            message names the file.
    """
    tampered = (
        "the artifact was changed after registration; do not use it: register the model again "
        "from a trusted training run"
    )
    manifest_bytes = _read(files, MANIFEST_FILE, where)
    actual = sha256_bytes(manifest_bytes)
    if manifest_sha256 is not None and actual != manifest_sha256:
        raise RegistryError(
            f"{MANIFEST_FILE} of {where} does not match the digest recorded at registration "
            f"(expected sha256 {manifest_sha256[:12]}…, found {actual[:12]}…)",
            tampered,
        )
    try:
        manifest = json.loads(manifest_bytes)
        recorded = manifest["files"]
    except (ValueError, KeyError, TypeError):
        raise RegistryError(
            f"{MANIFEST_FILE} of {where} is not a bundle manifest", tampered
        ) from None
    version = manifest.get("format")
    if not isinstance(version, int) or version > BUNDLE_FORMAT:
        raise RegistryError(
            f"{where} has bundle format {version!r}; this modelcycle reads up to {BUNDLE_FORMAT}",
            "upgrade modelcycle",
        )
    data: dict[str, bytes] = {}
    present = [name for name in OPTIONAL_FILES if name in recorded]
    for name in (*DIGESTED_FILES, *present):
        entry = recorded.get(name)
        if not isinstance(entry, dict) or "sha256" not in entry:
            raise RegistryError(
                f"{MANIFEST_FILE} of {where} records no digest for {name}", tampered
            )
        content = _read(files, name, where)
        found = sha256_bytes(content)
        if found != entry["sha256"]:
            raise RegistryError(
                f"{name} of {where} does not match its recorded sha256 digest "
                f"(expected {entry['sha256'][:12]}…, found {found[:12]}…)",
                tampered,
            )
        data[name] = content
    try:
        return VerifiedBundle(
            manifest=manifest,
            manifest_sha256=actual,
            schema=FeatureSchema.model_validate_json(data[SCHEMA_FILE]),
            profile=json.loads(data[PROFILE_FILE]),
            info=json.loads(data[METRICS_FILE]),
            card=data[CARD_FILE].decode("utf-8"),
            input_example=frame_from_json(data[INPUT_EXAMPLE_FILE].decode("utf-8")),
            pipeline_bytes=data[PIPELINE_FILE],
            ood_bytes=data.get(OOD_FILE),
        )
    except ValueError as err:  # pydantic ValidationError and JSONDecodeError are ValueErrors
        raise RegistryError(
            f"{where} has digests that match but files that do not parse: {err}".splitlines()[0],
            "the bundle was written by an incompatible modelcycle; register it again",
        ) from None


def _read(files: Mapping[str, Path], name: str, where: str) -> bytes:
    path = files.get(name)
    if path is None or not path.is_file():
        raise RegistryError(
            f"{where} has no {name}",
            "the artifact store is incomplete; register the model again",
        )
    return path.read_bytes()
