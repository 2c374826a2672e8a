"""gunicorn entry: `gunicorn -c services/artifacts/gunicorn.conf.py modelyard.artifact_proxy.asgi:app`."""

from modelyard.artifact_proxy.app import create_app
from modelyard.settings import Settings

app = create_app(Settings.from_env())
