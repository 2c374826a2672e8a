"""gunicorn config of the tracking service: the shared runtime settings (see modelyard.runtime).

gunicorn -c services/tracking/gunicorn.conf.py modelyard.tracking.asgi:app
"""

from modelyard.runtime.gunicorn_conf import *  # noqa: F403
