"""`log_model`: save a model to a temporary folder and publish it to the tracking server, MLflow 3's way.

The steps and their order match the `mlflow` client's, so a model logged by either client looks the same
to both: create a logged model (which owns an artifact location), link it to the run as an output,
write the MLmodel with that model_id, upload the folder to the logged model's location, mark it READY,
then register a version from `models:/<model_id>` when asked. A failure after creation marks the
logged model FAILED instead of leaving it PENDING forever.

The folder is saved while the create request is in flight (the model's files do not depend on its id;
the MLmodel, which names it, is written again once the id is known): the client's save and the server's
create overlap instead of adding up. `begin` sends that request, then the run's output link, on a
thread of their own; autologging begins it when `fit` starts, so both round trips overlap the training.
A caller's `on_created` (e.g. autologging's log-batch, whose metrics name the model) goes out on another
thread while the folder is uploaded. All are done before this returns; if one fails, the logging fails
(and the model is FAILED). The server still sees MLflow's order: create, link, upload.
`finalize_with` (autologging's `runs.at_end`) is handed the last step, marking the model READY, to run
later (with the run's end-run request) instead of now; not when a version is registered from the model.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from modelyard.exceptions import ModelyardException
from modelyard.models.mlmodel import Model, ModelInfo

DEFAULT_NAME = "model"


class PendingModel:
    """A logged model whose creation request is in flight on its own thread: started by `begin` before
    its files exist (autologging starts it when `fit` starts, so the round trip overlaps the training),
    completed by `log_model(..., pending=...)`, or `discard`ed when nothing will be logged to it."""

    def __init__(
        self, client: Any, run_id: str | None, name: str, creating: Future[Any], linked: Future[Any]
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.name = name
        #: The create request's answer (the LoggedModel, its id and artifact location).
        self.creating = creating
        #: The run's output link to the model, sent once it exists (MLflow's order: create, link,
        #: upload); a no-op without a run.
        self.linked = linked
        #: Whether `log_model` took it over (then the model ends READY or FAILED there).
        self.used = False

    def discard(self) -> None:
        """Delete the model if its creation went through (a fit that failed logs no model, as MLflow's);
        never raises: the caller's error, if any, is the one worth reporting."""
        try:
            self.client.delete_logged_model(self.creating.result().model_id)
        except Exception:
            pass


def begin(
    name: str | None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    model_type: str | None = None,
    run_id: str | None = None,
    step: int = 0,
) -> PendingModel:
    """Send the request creating a logged model, then the run's output link to it, on a thread of
    their own; return at once."""
    import modelyard
    from modelyard.client import Client
    from modelyard.client.async_logging import in_order
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
    created: list[Any] = []  # the LoggedModel, for the link (the same thread, after the creation)

    def create() -> Any:
        created.append(
            client.create_logged_model(
                experiment_id=experiment_id,
                name=name,
                source_run_id=run_id,
                params={k: str(v) for k, v in (params or {}).items()} or None,
                # The same context tags (user, source, git commit) MLflow's client puts on a logged model.
                tags={**system_tags(), **{k: str(v) for k, v in (tags or {}).items()}},
                model_type=model_type,
            )
        )
        return created[0]

    def link() -> None:
        if run_id is not None and created:  # no model: the creation's own error is the one raised
            client.log_outputs(run_id, [_model_output(created[0].model_id, step)])

    creating, linked = in_order("modelyard-create-model", (create,), (link,))
    return PendingModel(client, run_id, name, creating, linked)


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
    pending: PendingModel | None = None,
) -> ModelInfo:
    """`pending`: a creation `begin` started earlier (then `name`, `params`, `tags`, `model_type`,
    `run_id` and `step` are the ones given to it)."""
    import modelyard
    from modelyard.client.artifacts import get_artifact_repository

    if pending is None:
        pending = begin(name, params=params, tags=tags, model_type=model_type, run_id=run_id, step=step)
    pending.used = True
    client, run_id, name, creating = pending.client, pending.run_id, pending.name, pending.creating
    with ThreadPoolExecutor(max_workers=2) as pool:
        with tempfile.TemporaryDirectory(prefix="modelyard-log-model-") as tmp:
            local = Path(tmp) / "model"
            try:
                model = save(local, Model(run_id=run_id))
            except BaseException:
                _abandon(client, creating)
                raise
            logged = creating.result()
            try:
                created = pool.submit(on_created, logged.model_id) if on_created is not None else None
                model.artifact_path = str(logged.artifact_location)
                model.model_id = model.model_uuid = logged.model_id
                model.save(local)  # the MLmodel again, now naming the model
                get_artifact_repository(str(logged.artifact_location), client.tracking_uri).log_artifacts(
                    str(local)
                )
                for future in (pending.linked, created):
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
