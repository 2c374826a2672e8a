"""gunicorn entry: `gunicorn -c python:modelyard.runtime.gunicorn_conf modelyard.gateway.asgi:app`
with MODELYARD_GATEWAY_TRACKING_URL and MODELYARD_GATEWAY_ARTIFACTS_URL naming the upstreams."""

from modelyard.gateway.app import Upstreams, create_app

app = create_app(Upstreams.from_env())
