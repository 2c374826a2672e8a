"""Wall-clock time in MLflow's unit (epoch milliseconds).

Its own bottom-layer module so that both the client and the system-metrics monitor (which the client
starts) can stamp records without importing each other.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)
