"""Run the local stack as native processes: PostgreSQL, moto's S3 server and the gunicorn services.

The test fixtures (tests/conftest.py) and `make up` (`python -m modelyard.devstack up`) share this
code, so a test starts the stack exactly the way a developer does.
"""

from modelyard.devstack.postgres import PostgresServer
from modelyard.devstack.process import StartupError, free_port
from modelyard.devstack.s3 import DUMMY_AWS_ENV, S3Server
from modelyard.devstack.services import SERVICES, GunicornService, ServiceSpec

__all__ = [
    "DUMMY_AWS_ENV",
    "SERVICES",
    "GunicornService",
    "PostgresServer",
    "S3Server",
    "ServiceSpec",
    "StartupError",
    "free_port",
]
