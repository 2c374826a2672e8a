"""A local SageMaker-style endpoint service: the control-plane subset the deploy step uses, and InvokeEndpoint.

It runs real serving workers (`modelyard.serving`) for each production variant, so boto3 code written for
SageMaker gets real predictions on a laptop. State lives in one process: run it with one gunicorn worker.
"""
