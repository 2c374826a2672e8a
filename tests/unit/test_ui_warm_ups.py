"""The UI's lazy clients: a worker builds them once a sibling worker did (`modelyard.ui.warm_ups`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from modelyard.artifact_proxy.locations import LocationReader
from modelyard.artifact_repos.locations import Locator
from modelyard.deploy import inventory
from modelyard.runtime import warmup
from modelyard.ui import artifact_access, warm_ups


def test_a_worker_builds_the_ui_clients_once_a_sibling_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inventory, "_clients", {})
    monkeypatch.setattr(warmup, "POLL_SECONDS", 0.01)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    app = SimpleNamespace(state=SimpleNamespace(artifact_reader=LocationReader(Locator(str(tmp_path)))))
    flags = (warmup.UI_FILES_WARM, warmup.UI_SAGEMAKER_WARM)
    for flag in flags:
        flag._page[0] = 0

    async def run(seconds: float) -> None:
        tasks = [asyncio.create_task(c) for c in warm_ups(app)]  # type: ignore[arg-type]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run(0.1))  # nobody needed them yet: nothing is built
    assert not artifact_access.locator(app).has_destination_repository() and not inventory.has_shared_client()
    for flag in flags:
        flag.set()  # a sibling built its own
    asyncio.run(run(0.5))
    assert artifact_access.locator(app).has_destination_repository() and inventory.has_shared_client()
    for flag in flags:
        flag._page[0] = 0


def test_every_worker_compiles_all_templates_once_any_rendered_a_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page's first load in a worker would otherwise pay its templates' compilation (~10-100 ms
    each); the flag any render raises makes every worker compile them all in the background."""
    from modelyard.ui import render

    monkeypatch.setattr(warmup, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(render, "_env", None)
    monkeypatch.setattr(render, "_all_compiled", False)
    warmup.UI_TEMPLATES_WARM._page[0] = 0
    app = SimpleNamespace(state=SimpleNamespace())

    async def run(seconds: float) -> None:
        templates, *clients = warm_ups(app)  # type: ignore[arg-type]
        for other in clients:
            other.close()
        task = asyncio.create_task(templates)
        await asyncio.sleep(seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run(0.1))  # no page yet: nothing compiled
    assert not render.all_compiled() and not warmup.UI_TEMPLATES_WARM.is_set()
    with pytest.raises(AttributeError):  # a request with nothing in it: the flag goes up first all the same
        render.render(SimpleNamespace(), "error_fragment.html")  # type: ignore[arg-type]
    assert warmup.UI_TEMPLATES_WARM.is_set()
    asyncio.run(run(3.0))
    env = render.environment()
    assert render.all_compiled()
    assert set(env.list_templates()) <= {t.name for t in env.cache.values()}  # type: ignore[union-attr]
    warmup.UI_TEMPLATES_WARM._page[0] = 0
