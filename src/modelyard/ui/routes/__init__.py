"""The UI's routers, one module per page family; a new page family joins by adding its router here."""

from __future__ import annotations

from fastapi import APIRouter

from modelyard.ui.routes import (
    account,
    admin,
    compare,
    deploy_actions,
    deployments,
    experiments,
    login,
    model_score,
    models,
    permissions,
    run,
    run_artifacts,
    run_charts,
    runs,
    static,
)


def routers() -> list[APIRouter]:
    return [
        static.router,
        experiments.router,
        runs.router,
        run.router,
        run_charts.router,
        run_artifacts.router,
        compare.router,
        models.router,
        model_score.router,
        deployments.router,
        deploy_actions.router,
        login.router,
        account.router,
        permissions.router,
        admin.router,
    ]
