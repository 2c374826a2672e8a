"""What an autologged fit sends while it trains: the requests that do not need the fitted model.

A small fit's logging is mostly round trips, and during the training the server (and the machine's
other core) is idle. So when `fit` starts, two threads send what depends only on the estimator's
params and the training data: the logged model's creation and the run's output link to it
(`publish.begin`), and the training dataset's fingerprint and its `train` input (MLflow's autologging
logs the dataset before training too). After the fit, the model's files go to the model created
meanwhile. A fit that raises leaves no model behind (`discard`): the run ends FAILED with its dataset,
as MLflow's. Every failure here is a warning, like all autologging errors.

Not begun early: a search's model (its params include the `best_*` the fit finds), and anything when
models or datasets are not logged.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from modelyard.autologging.patching import safely


class FitStart:
    def __init__(
        self, pending_model: Any = None, dataset: Future[Any] | None = None, logged: Future[Any] | None = None
    ) -> None:
        #: `publish.PendingModel`, or None.
        self.pending_model = pending_model
        self._dataset = dataset
        self._logged = logged

    def dataset(self) -> tuple[Any, dict[str, Any] | None]:
        """The training dataset and its `train` input entry (None, None when not logged)."""
        if self._dataset is None:
            return None, None
        return self._dataset.result() or (None, None)

    def finish(self) -> None:
        """Wait for the dataset input's request; discard a model creation nothing was logged to (the fit
        failed, or the logging stopped before the model)."""
        if self._logged is not None:
            self._logged.result()  # `safely` inside: never raises
        if self.pending_model is not None and not self.pending_model.used:
            self.pending_model.discard()


def begin_fit(
    integration: str,
    silent: bool,
    run_id: str,
    X: Any,
    y: Any,
    model_params: dict[str, str] | None,
    log_datasets: bool,
) -> FitStart:
    """Start the early requests; `model_params` None: no model is begun."""
    pending_model = None
    if model_params is not None:
        from modelyard.models import publish

        pending_model = safely(integration, silent, publish.begin, "model", params=model_params, run_id=run_id)
    dataset = logged = None
    if log_datasets and X is not None:
        from modelyard.client.async_logging import in_order

        found: list[Any] = []  # the dataset, for its input (the same thread, after the fingerprint)

        def fingerprint() -> tuple[Any, dict[str, Any]] | None:
            found.append(safely(integration, silent, _train_dataset, X, y))
            return found[0]

        def log_input() -> None:
            if found and found[0] is not None:
                safely(integration, silent, _log_input, run_id, found[0][1])

        dataset, logged = in_order("modelyard-autolog-dataset", (fingerprint,), (log_input,))
    return FitStart(pending_model, dataset, logged)


def _train_dataset(X: Any, y: Any) -> tuple[Any, dict[str, Any]] | None:
    from modelyard.autologging.datasets import dataset_of
    from modelyard.data.inputs import dataset_input

    found = dataset_of(X, y)
    return None if found is None else (found, dataset_input(found, "train"))


def _log_input(run_id: str, entry: dict[str, Any]) -> None:
    from modelyard.client import Client

    Client().log_inputs(run_id, [entry])
