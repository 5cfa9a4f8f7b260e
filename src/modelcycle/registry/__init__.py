"""The model registry: model bundles in MLflow, aliases, digest-verified loading, model cards."""
