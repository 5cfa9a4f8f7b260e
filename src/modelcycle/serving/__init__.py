"""The serving stage: the HTTP model server (native JSON, MLflow, Open Inference Protocol) and
batch inference over files. ``create_app(settings)`` builds the server."""
