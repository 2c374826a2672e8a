"""gunicorn entry (one worker: the control plane keeps endpoint state in-process):
`MODELYARD_WORKERS=1 gunicorn -c python:modelyard.runtime.gunicorn_conf modelyard.endpoints.asgi:app`."""

from modelyard.endpoints.app import create_app
from modelyard.settings import Settings

app = create_app(Settings.from_env())
