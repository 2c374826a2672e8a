"""Moved to `modelyard.protocol.parsing`: request parsing is the wire protocol, used below the routers.

Kept so branches written against the old path still import; new code imports the new path, and this
shim goes once those branches are merged.
"""

from modelyard.protocol.parsing import *  # noqa: F403
