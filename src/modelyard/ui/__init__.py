"""The web UI: server-rendered pages (Jinja2) with htmx and uPlot islands, served by the tracking service.

`mount(app, settings)` adds the pages and the static files to the tracking app. The UI lives at `/`
and beside the API, same origin; its routes call the same stores as the API routers
(`app.state.tracking_store`, ...), never the API over HTTP. Layout: `routes/` (one module per page
family, each exposing `router`), `templates/`, `static/` (ours, and `vendor/` with pinned copies of
htmx and uPlot), `render.py` (templates, security headers, error pages), `assets.py`, `csrf.py`.
With auth on, `app.state.page_error` lets the auth middleware answer a refused page or form with the
UI's error page rather than MLflow's JSON.
"""

from __future__ import annotations

from fastapi import FastAPI

from modelyard.settings import Settings
from modelyard.ui.render import refusal_page
from modelyard.ui.routes import routers


def mount(app: FastAPI, settings: Settings) -> None:
    for router in routers():
        app.include_router(router)
    app.state.page_error = refusal_page
