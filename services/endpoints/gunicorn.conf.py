"""gunicorn config of the local SageMaker-style endpoint service (see modelyard.endpoints.gunicorn_conf):
always one worker, whatever --workers says.

    gunicorn -c services/endpoints/gunicorn.conf.py modelyard.endpoints.asgi:app
"""

from modelyard.endpoints.gunicorn_conf import *  # noqa: F403
