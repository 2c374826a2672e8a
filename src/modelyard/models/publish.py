"""`log_model`: save a model to a temporary folder and publish it to the tracking server, MLflow 3's way.

The steps and their order match the `mlflow` client's, so a model logged by either client looks the same
to both: create a logged model (which owns an artifact location), link it to the run as an output,
write the MLmodel with that model_id, upload the folder to the logged model's location, mark it READY,
then register a version from `models:/<model_id>` when asked. A failure after creation marks the
logged model FAILED instead of leaving it PENDING forever.

The folder is saved while the create request is in flight (the model's files do not depend on its id;
the MLmodel, which names it, is written again once the id is known): the client's save and the server's
create overlap instead of adding up. The run's output link (and a caller's `on_created`, e.g.
autologging's log-batch, whose metrics name the model) go out on other threads as soon as the model
exists, while the folder is still being saved and then uploaded: one sequential round trip each fewer.
Both are done before this returns; if either fails, the logging fails (and the model is FAILED). The
server sees the creation first, as in MLflow's order (create, link, upload).
`finalize_with` (autologging's `runs.at_end`) is handed the last step, marking the model READY, to run
later (with the run's end-run request) instead of now; not when a version is registered from the model.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from modelyard.exceptions import ModelyardException
from modelyard.models.mlmodel import Model, ModelInfo

DEFAULT_NAME = "model"


def log_model(
    save: Callable[[Path, Model], Model],
    name: str | None,
    registered_model_name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    run_id: str | None = None,
    on_created: Callable[[str], None] | None = None,
    finalize_with: Callable[[Callable[[], None]], None] | None = None,
) -> ModelInfo:
    import modelyard
    from modelyard.client import Client
    from modelyard.client.artifacts import get_artifact_repository
    from modelyard.client.async_logging import Tasks
    from modelyard.client.run_context import system_tags

    name = name or DEFAULT_NAME
    if "/" in name or name in (".", ".."):
        raise ModelyardException.invalid_parameter(f"Invalid model name {name!r}: it may not contain '/'")
    client = Client()
    active = modelyard.active_run()
    if run_id is None:
        run_id = active.info.run_id if active is not None else None
    if active is not None and active.info.run_id == run_id:
        experiment_id = active.info.experiment_id  # known already: no get-run round trip
    else:
        experiment_id = client.get_run(run_id).info.experiment_id if run_id else _current_experiment_id()
    with Tasks() as pool:
        creating = pool.submit(
            client.create_logged_model,
            experiment_id=experiment_id,
            name=name,
            source_run_id=run_id,
            params={k: str(v) for k, v in (params or {}).items()} or None,
            # The same context tags (user, source, git commit) MLflow's client puts on a logged model.
            tags={**system_tags(), **{k: str(v) for k, v in (tags or {}).items()}},
            model_type=model_type,
        )
        # Each as soon as the model exists, while the folder is still being saved (tasks wait only for
        # earlier ones: the creation).
        linked = pool.submit(_link, client, run_id, creating, step) if run_id is not None else None
        created = pool.submit(lambda: on_created(creating.result().model_id)) if on_created is not None else None
        with tempfile.TemporaryDirectory(prefix="modelyard-log-model-") as tmp:
            local = Path(tmp) / "model"
            try:
                model = save(local, Model(run_id=run_id))
            except BaseException:
                _abandon(client, creating)
                raise
            logged = creating.result()
            try:
                model.artifact_path = str(logged.artifact_location)
                model.model_id = model.model_uuid = logged.model_id
                model.save(local)  # the MLmodel again, now naming the model
                get_artifact_repository(str(logged.artifact_location), client.tracking_uri).log_artifacts(
                    str(local)
                )
                for future in (linked, created):
                    if future is not None:
                        future.result()
            except BaseException:
                _finalize_failed(client, logged.model_id)
                raise
    if finalize_with is not None and registered_model_name is None:
        finalize_with(functools.partial(_finalize_ready, client, logged.model_id))
    else:
        _finalize_ready(client, logged.model_id)
    version = None
    model_uri = f"models:/{logged.model_id}"
    if registered_model_name is not None:
        version = int(modelyard.register_model(model_uri, registered_model_name).version)
    return ModelInfo(
        artifact_path=name,
        flavors=model.flavors,
        model_uri=model_uri,
        model_uuid=model.model_uuid,
        run_id=run_id,
        model_id=logged.model_id,
        signature=model.signature,
        utc_time_created=model.utc_time_created,
        saved_input_example_info=model.saved_input_example_info,
        registered_model_version=version,
        metadata=model.metadata,
    )


def _link(client: Any, run_id: str, creating: Future[Any], step: int) -> None:
    """The run's output link to the model (MLflow's `log_outputs`), once the model exists."""
    client.log_outputs(run_id, [_model_output(creating.result().model_id, step)])


def _abandon(client: Any, creating: Future[Any]) -> None:
    """After a failed save: the model, if its creation went through, is marked FAILED (never left
    PENDING); the save's error is the one raised, not the creation's."""
    try:
        model_id = creating.result().model_id
    except Exception:
        return
    _finalize_failed(client, model_id)


def _finalize_ready(client: Any, model_id: str) -> None:
    try:
        client.finalize_logged_model(model_id, "READY")
    except BaseException:
        _finalize_failed(client, model_id)
        raise


def _finalize_failed(client: Any, model_id: str) -> None:
    try:
        client.finalize_logged_model(model_id, "FAILED")
    except Exception:  # the original error is the one worth reporting
        pass


def _model_output(model_id: str, step: int) -> Any:
    from modelyard.entities.logged_model import ModelOutput

    return ModelOutput(model_id=model_id, step=step)


def _current_experiment_id() -> str:
    from modelyard.client import fluent

    return str(fluent.current_experiment_id())
