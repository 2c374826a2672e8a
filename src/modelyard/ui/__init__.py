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

from collections.abc import Coroutine
from typing import Any

from fastapi import FastAPI

from modelyard.settings import Settings
from modelyard.ui.render import refusal_page
from modelyard.ui.routes import routers


def mount(app: FastAPI, settings: Settings) -> None:
    for router in routers():
        app.include_router(router)
    app.state.page_error = refusal_page


def warm_ups(app: FastAPI) -> list[Coroutine[Any, Any, None]]:
    """Lifespan tasks: the UI builds its artifact-store and SageMaker clients on first use (a worker
    that never shows a model version or a deployment never pays ~40 MB for boto3); once one worker
    built one, the others build theirs in the background (`modelyard.runtime.warmup`), so no page
    waits ~0.3 s for it on a worker that has not built it yet. Templates likewise: once any worker
    rendered a page, every worker compiles them all (~0.3 s of CPU), so no page's first load in a
    worker pays its templates' compilation (the version page's first load: ~170 ms instead of ~40)."""
    from modelyard.deploy import inventory
    from modelyard.runtime.warmup import (
        UI_FILES_WARM,
        UI_SAGEMAKER_WARM,
        UI_TEMPLATES_WARM,
        warm_up_with_siblings,
    )
    from modelyard.ui import artifact_access, render

    return [
        warm_up_with_siblings(lambda: not render.all_compiled(), render.compile_all, UI_TEMPLATES_WARM),
        warm_up_with_siblings(
            lambda: not artifact_access.locator(app).has_destination_repository(),
            lambda: artifact_access.locator(app).destination_repository() and None,
            UI_FILES_WARM,
        ),
        warm_up_with_siblings(
            lambda: not inventory.has_shared_client(),
            lambda: inventory.shared_client() and None,
            UI_SAGEMAKER_WARM,
        ),
    ]
