"""The round trip through a labelling tool: push pre-annotations to Label Studio, pull the
reviewed masks back with provenance, serve the model as an ML backend."""

from robot_instseg._exports import public_api

__all__, __getattr__ = public_api(__name__, """
    errors:        LabellingError
    client:        LabelStudioClient
    push:          PushConfig push_dataset
    pull:          pull_project
    backend:       Predictor create_app
""")
