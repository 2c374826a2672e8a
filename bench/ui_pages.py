"""The pages the UI benchmark loads, and when each counts as usable: ONE table, for both sides.

A page is usable when every one of its `Ready` conditions holds (checked on every animation frame)
AND the network has been quiet for 500 ms (bench/browser.py). A condition is a CSS selector that
must match at least `min` visible elements, optionally only elements whose text contains `text`, and
optionally only elements that are `drawn`: a 2D canvas with at least one non-transparent pixel
("canvas") or an SVG path with real geometry ("path"). Selectors and texts are `str.format`
templates over the side's `Fixture` (ids and names of the seeded data).

modelyard's pages are server-rendered at the URLs of the UI contract; MLflow 3.17.2's UI is a
hash-routed React app (`/#/...`), its URLs and DOM checked by loading them from `mlflow server`.
When a modelyard page changes its markup, adjust its row here: nothing else knows the selectors.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from urllib.parse import quote

#: The runs-page filter (the same one the API search benchmark uses).
FILTER = "metrics.m0 < 0.52 and params.optimizer = 'adam'"
#: The metric with the 100,000-step history.
HISTORY_KEY = "loss"


@dataclass(frozen=True)
class Fixture:
    """One side's seeded data, as the pages need it (ids differ between the sides)."""

    experiment_id: str
    experiment_name: str
    #: The newest run of the 10,000 (first row of the runs page) and its name.
    newest_run_id: str
    newest_run_name: str
    #: The newest run matching FILTER (first row of the filtered runs page).
    filtered_run_id: str
    filtered_run_name: str
    #: The run whose page is measured (a run of the 10,000: 10 params, 10 metrics, 5 tags).
    run_id: str
    run_name: str
    history_experiment_id: str
    history_run_id: str
    #: The 50 newest runs, newest first (compare 5 takes the first 5); with their names.
    compare_ids: tuple[str, ...] = field(default_factory=tuple)
    compare_names: tuple[str, ...] = field(default_factory=tuple)
    #: The registry (bench/registry_seed.py): the models page's first row in the side's own default
    #: order, the measured model (50 versions; modelyard: 1,000 history events) and its newest version.
    first_model_name: str = ""
    model_name: str = ""
    model_version: str = ""

    def values(self) -> dict[str, str]:
        """What selector/text templates and URL builders can use."""
        out = {k: v for k, v in asdict(self).items() if isinstance(v, str)}
        for n in (5, 50):
            out[f"last_of_{n}_id"] = self.compare_ids[n - 1]
            out[f"last_of_{n}_name"] = self.compare_names[n - 1]
        return out


@dataclass(frozen=True)
class Ready:
    selector: str
    text: str = ""
    min: int = 1
    #: "" (visible is enough), "canvas" (a 2D canvas with a painted pixel) or "path" (an SVG path with data).
    drawn: str = ""

    def bind(self, values: dict[str, str]) -> dict[str, object]:
        return {"selector": self.selector.format(**values), "text": self.text.format(**values),
                "min": self.min, "drawn": self.drawn}  # fmt: skip


@dataclass(frozen=True)
class View:
    """One side's page: a URL path template (over Fixture.values() plus `filter`, `runs_5`, ...) and
    the conditions that make it usable. `rows` (runs page only) counts the table rows for the
    no-JavaScript check."""

    path: str
    ready: tuple[Ready, ...]
    rows: str = ""

    def url(self, fixture: Fixture) -> str:
        values = fixture.values()
        ids = fixture.compare_ids
        return self.path.format(
            **values,
            filter=quote(FILTER, safe=""),
            history_key=HISTORY_KEY,
            runs_5=",".join(ids[:5]),
            runs_50=",".join(ids[:50]),
            runs_5_json=quote(json.dumps(list(ids[:5]), separators=(",", ":")), safe=""),
            runs_50_json=quote(json.dumps(list(ids[:50]), separators=(",", ":")), safe=""),
        )


@dataclass(frozen=True)
class Page:
    name: str
    modelyard: View
    #: None: MLflow has no such page (reported as missing there).
    mlflow: View | None

    def view(self, side: str) -> View | None:
        return self.modelyard if side == "modelyard" else self.mlflow


# MLflow's metric page keeps its whole chart state in the hash's query string.
_MLFLOW_METRIC = (
    "/#/metric/{history_key}?runs=%5B%22{history_run_id}%22%5D&metric=%22{history_key}%22"
    "&experiments=%5B%22{history_experiment_id}%22%5D&plot_metric_keys=%5B%22{history_key}%22%5D"
    "&plot_layout=%7B%7D&x_axis=step&y_axis_scale=linear&line_smoothness=1&show_point=false"
    "&deselected_curves=%5B%5D&last_linear_y_axis_range=%5B%5D"
)


def _mlflow_compare(n: int) -> tuple[Ready, ...]:
    """MLflow's compare page: a run table and a parallel-coordinates plot (WebGL lines, SVG axes)."""
    return (
        Ready("table.mlflow-compare-run-table", text=f"{{last_of_{n}_id}}"),
        Ready(".js-plotly-plot .parcoords .y-axis"),
    )


def _modelyard_compare(n: int) -> tuple[Ready, ...]:
    return (Ready("#compare-table", text=f"{{last_of_{n}_name}}"), Ready("#parcoords canvas", drawn="canvas"))


PAGES: tuple[Page, ...] = (
    Page(
        "experiments",
        modelyard=View("/experiments", (Ready("#experiments a", text="{experiment_name}"),)),
        mlflow=View("/#/experiments", (Ready("a", text="{experiment_name}"),)),
    ),
    Page(
        "runs",
        modelyard=View(
            "/experiments/{experiment_id}",
            (Ready("#runs tbody tr:first-child", text="{newest_run_name}"), Ready("#runs tbody tr", min=50)),
            rows="#runs tbody tr",
        ),
        mlflow=View(
            "/#/experiments/{experiment_id}/runs",
            (Ready('.ag-center-cols-container .ag-row[row-id="{newest_run_id}"]'),),
            rows=".ag-center-cols-container .ag-row",
        ),
    ),
    Page(
        "runs filtered",
        modelyard=View(
            "/experiments/{experiment_id}?filter={filter}",
            (Ready("#runs tbody tr:first-child", text="{filtered_run_name}"),),
        ),
        mlflow=View(
            "/#/experiments/{experiment_id}/runs?searchFilter={filter}",
            (Ready('.ag-center-cols-container .ag-row[row-index="0"][row-id="{filtered_run_id}"]'),),
        ),
    ),
    Page(
        "run",
        modelyard=View(
            "/runs/{run_id}",
            (Ready("#run-name", text="{run_name}"), Ready("#params-table", text="optimizer")),
        ),
        mlflow=View(
            "/#/experiments/{experiment_id}/runs/{run_id}",
            (
                Ready('[data-testid="runs-header"]', text="{run_name}"),
                Ready('[role="row"]', text="optimizer"),
            ),
        ),
    ),
    Page(
        "run metric chart, 100k steps",
        modelyard=View(
            "/runs/{history_run_id}?tab=charts&keys={history_key}", (Ready("#charts canvas", drawn="canvas"),)
        ),
        mlflow=View(_MLFLOW_METRIC, (Ready(".js-plotly-plot path.js-line", drawn="path"),)),
    ),
    Page(
        "compare 5 runs",
        modelyard=View("/compare?runs={runs_5}", _modelyard_compare(5)),
        mlflow=View(
            "/#/compare-runs?runs={runs_5_json}&experiments=%5B%22{experiment_id}%22%5D", _mlflow_compare(5)
        ),
    ),
    Page(
        "compare 50 runs",
        modelyard=View("/compare?runs={runs_50}", _modelyard_compare(50)),
        mlflow=View(
            "/#/compare-runs?runs={runs_50_json}&experiments=%5B%22{experiment_id}%22%5D", _mlflow_compare(50)
        ),
    ),
    # The registry (issue #16): 100 models x 50 versions, the measured model with 1,000 history events.
    Page(
        "models, 100",
        modelyard=View(
            "/models", (Ready("#models tbody tr:first-child", text="{first_model_name}"), Ready("#models tbody tr", min=100))
        ),
        mlflow=View("/#/models", (Ready('a[href="#/models/{first_model_name}"]'),)),
    ),
    Page(
        "model, 50 versions + 1,000 events",
        modelyard=View(
            "/model?name={model_name}",
            (Ready("#versions tbody tr", min=50), Ready("#timeline li.event", min=50)),
        ),
        mlflow=View("/#/models/{model_name}", (Ready('a[href="#/models/{model_name}/versions/{model_version}"]'),)),
    ),
    Page(
        "model version",
        modelyard=View(
            "/model-version?name={model_name}&version={model_version}",
            (Ready("#version-facts"), Ready('table.signature[data-part="inputs"] tbody tr', min=10)),
        ),
        mlflow=View("/#/models/{model_name}/versions/{model_version}", (Ready("main, #root", text="Inputs (10)"),)),
    ),
    Page("deployments", modelyard=View("/deployments", (Ready("#endpoints tbody tr", min=2),)), mlflow=None),
)
