"""The UI's routers, one module per page family; a new page family joins by adding its router here."""

from __future__ import annotations

from fastapi import APIRouter

from modelyard.ui.routes import deployments, experiments, models, runs, static


def routers() -> list[APIRouter]:
    return [static.router, experiments.router, runs.router, models.router, deployments.router]
