"""The MLflow pyfunc of a modelcycle bundle, logged as MLflow "models from code".

MLflow copies this file into every registered modelcycle model and runs it when any MLflow
client calls ``mlflow.pyfunc.load_model("models:/<name>/<version>")``. It needs modelcycle
installed in that environment: the verification and prediction code is modelcycle's own, so the
pyfunc and modelcycle's loader give identical predictions.

``load_context`` checks the sha256 of every bundle file against ``manifest.json`` (and the
manifest's own digest against the one recorded in the model's configuration) before the skops
file is deserialised with only the manifest's types trusted; a tampered artifact raises
:class:`~modelcycle.registry.manifest.RegistryError` naming the file.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from modelcycle.registry.bundle import predict_frame
from modelcycle.registry.manifest import MANIFEST_SHA_KEY, paths_from_artifacts, verify_bundle


class BundleModel(PythonModel):
    """Predicts with a verified modelcycle bundle: ``prediction`` (+ ``proba_<class>`` columns)."""

    def load_context(self, context: PythonModelContext) -> None:
        """Verify the bundle's digests, then load its pipeline with skops.

        Raises:
            RegistryError: A bundle file is missing or does not match its recorded digest.
        """
        config = context.model_config or {}
        expected = config.get(MANIFEST_SHA_KEY)
        bundle = verify_bundle(
            paths_from_artifacts(context.artifacts),
            where="this MLflow model",
            manifest_sha256=str(expected) if expected else None,
        )
        info = bundle.info
        self.pipeline_ = bundle.load_pipeline("this MLflow model")
        self.task_ = info["task"]
        self.threshold_ = info.get("threshold")
        self.classes_ = info.get("classes")
        self.feature_names_ = bundle.schema.input_names

    def predict(
        self,
        context: PythonModelContext,  # noqa: ARG002 - MLflow's signature
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,  # noqa: ARG002 - MLflow's signature
    ) -> pd.DataFrame:
        """Predict on a DataFrame of features by name (see ``predict_frame``)."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return predict_frame(
            self.pipeline_,
            frame,
            task=self.task_,
            feature_names=self.feature_names_,
            threshold=self.threshold_,
            classes=self.classes_,
        )


mlflow.models.set_model(BundleModel())
