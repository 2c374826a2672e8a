"""Moved to `modelyard.store.webhooks.targets`: the subscription store checks targets on write.

Kept so branches written against the old path still import; new code imports the new path, and this
shim goes once those branches are merged.
"""

from modelyard.store.webhooks.targets import *  # noqa: F403
