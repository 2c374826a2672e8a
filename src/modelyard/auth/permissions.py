"""Moved to `modelyard.store.auth.permissions`: the grant store needs the permission levels.

Kept so branches written against the old path still import; new code imports the new path, and this
shim goes once those branches are merged.
"""

from modelyard.store.auth.permissions import *  # noqa: F403
