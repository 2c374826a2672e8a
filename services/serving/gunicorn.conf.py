"""gunicorn config of the scoring service (see modelyard.serving.gunicorn_conf).

    MODELYARD_MODEL_URI=models:/churn/Production gunicorn -c services/serving/gunicorn.conf.py modelyard.serving.asgi:app
"""

from modelyard.serving.gunicorn_conf import *  # noqa: F403
