"""Webhook delivery: payload signing (`signing`, what receivers verify) and the delivery worker."""
