"""gunicorn entry: `gunicorn -c services/tracking/gunicorn.conf.py modelyard.tracking.asgi:app`."""

from modelyard.settings import Settings
from modelyard.tracking.app import create_app

app = create_app(Settings.from_env())
