"""Webhooks: subscriptions, the outbox written with each change, and the delivery queue/log."""
