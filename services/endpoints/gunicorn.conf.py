"""gunicorn config of the local SageMaker-style endpoint service: the shared runtime settings.

It keeps endpoint state in its one process, so it runs with exactly one worker whatever
MODELYARD_WORKERS says; the serving workers it starts for each variant are separate gunicorns.

    gunicorn -c services/endpoints/gunicorn.conf.py modelyard.endpoints.asgi:app
"""

from modelyard.runtime.gunicorn_conf import *  # noqa: F403

workers = 1
