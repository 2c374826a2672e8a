"""The gunicorn runtime every modelyard service shares: one config module and one worker class.

Run any service as `gunicorn -c python:modelyard.runtime.gunicorn_conf <module>:app`; the service
folders' `gunicorn.conf.py` files re-export this config so each can add hooks of its own.
"""
