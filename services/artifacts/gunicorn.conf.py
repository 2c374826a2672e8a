"""gunicorn config of the artifacts service: the shared runtime settings (see modelyard.runtime).

    gunicorn -c services/artifacts/gunicorn.conf.py modelyard.artifact_proxy.asgi:app
"""

from modelyard.runtime.gunicorn_conf import *  # noqa: F403
