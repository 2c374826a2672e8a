"""gunicorn entry: `gunicorn -c python:modelyard.endpoints.gunicorn_conf modelyard.endpoints.asgi:app`
(that config pins one worker: the control plane keeps endpoint state in-process)."""

from modelyard.endpoints.app import create_app
from modelyard.settings import Settings

app = create_app(Settings.from_env())
