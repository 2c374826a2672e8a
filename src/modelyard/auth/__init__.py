"""Users, tokens and permissions (issue #17), off unless `MODELYARD_AUTH=true`.

Layers: `permissions` (levels and resolution, pure), `passwords` (argon2id), `cache` (per-worker caches
and the workers' shared change counter), `context` (`AuthContext`: the store plus caches, the object
routes ask), the domain functions `accounts`, `tokens`, `sessions`, then the HTTP edge: `identify`
(which credential a request carries and whose it is), `rate_limit`, `rules` (every route's permission
rule), `middleware` (the ASGI middleware that enforces them), `routes` (MLflow's auth REST API).
The identity a route sees is described in `identity`. Rows live in `modelyard.store.auth`.

This module imports nothing, so the stores can use `modelyard.store.auth.permissions` without cycles.
"""
