"""The serving stage: the model server and batch inference over files.

``create_app(settings)`` (in :mod:`modelcycle.serving.app`) builds the HTTP server: native
JSON, MLflow's ``/invocations`` and the Open Inference Protocol.
"""
