"""Moved to `modelyard.errors`: error codes are the bottom layer, exceptions need them.

Kept so branches written against the old path still import; new code imports the new path, and this
shim goes once those branches are merged.
"""

from modelyard.errors import *  # noqa: F403
