"""gunicorn entry: `gunicorn -c python:modelyard.runtime.gunicorn_conf modelyard.serving.asgi:app`."""

from modelyard.serving.app import create_app
from modelyard.settings import Settings

app = create_app(Settings.from_env())
