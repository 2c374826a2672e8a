"""The tutorial workflow of issue #18 (autolog, xgboost autolog, evaluate), written against `mlflow`.

`run(mlflow, experiment)` uses nothing but the `mlflow` module it is given, so the same code runs with
`import mlflow` and with `import modelyard as mlflow`; the compat tests run it both ways against one
modelyard server and compare the runs. As a script:

    python tests/compat/seeds_autolog.py --tracking-uri http://127.0.0.1:5000 [--modelyard]
"""

from __future__ import annotations

import argparse
from types import ModuleType


def run(mlflow: ModuleType, experiment: str) -> None:
    import numpy as np
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.model_selection import GridSearchCV, train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    mlflow.set_experiment(experiment)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

    # 1. sklearn autolog: a plain estimator (numpy data: a tensor dataset), a Pipeline on a DataFrame,
    #    a GridSearchCV (child runs), then post-training metrics on the pipeline's predictions.
    mlflow.sklearn.autolog(max_tuning_runs=3)
    Xd, yd = load_diabetes(return_X_y=True)
    LinearRegression().fit(Xd[:300], yd[:300])
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]).fit(
        X_train, y_train
    )
    from sklearn.metrics import accuracy_score, f1_score  # after autolog(): the patched functions

    pred = pipe.predict(X_test)
    accuracy_score(y_test, pred)
    f1_score(y_test, pred)
    pipe.score(X_test, y_test)
    grid = {"max_depth": [2, 3, 4], "min_samples_leaf": [1, 5]}
    GridSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=3).fit(X_train, y_train)
    mlflow.sklearn.autolog(disable=True)

    # 2. xgboost autolog: the native API with two eval sets.
    mlflow.xgboost.autolog()
    dtrain = xgb.DMatrix(X_train, label=y_train)
    dtest = xgb.DMatrix(X_test, label=y_test)
    params = {"objective": "binary:logistic", "max_depth": 2, "eval_metric": ["logloss", "auc"], "nthread": 1}
    xgb.train(
        params, dtrain, num_boost_round=4, evals=[(dtrain, "train"), (dtest, "test")], verbose_eval=False
    )
    mlflow.xgboost.autolog(disable=True)

    # 3. evaluate: a regressor, a binary and a (class-imbalanced) multiclass classifier.
    def scaled_lr() -> Pipeline:
        return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])

    Xw, yw = load_wine(return_X_y=True, as_frame=True)
    Xr, yr = load_diabetes(return_X_y=True, as_frame=True)
    cases = [
        ("evaluate-regressor", "regressor", LinearRegression().fit(Xr, yr), Xr, yr),
        ("evaluate-binary", "classifier", scaled_lr().fit(X_train, y_train), X_test, y_test),
        ("evaluate-multiclass", "classifier", scaled_lr().fit(Xw, yw), Xw, yw),
    ]
    for name, model_type, model, features, target in cases:
        with mlflow.start_run(run_name=name):
            # Requirements given: mlflow would otherwise infer them in a subprocess (seconds per model).
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn", "pandas"])
            data = features.assign(label=np.asarray(target))
            mlflow.evaluate(
                info.model_uri, data, targets="label", model_type=model_type, evaluators="default"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--experiment", default="seeds-autolog")
    parser.add_argument("--modelyard", action="store_true", help="import modelyard as mlflow")
    args = parser.parse_args()
    if args.modelyard:
        import modelyard as mlflow
    else:
        import mlflow
    mlflow.set_tracking_uri(args.tracking_uri)
    run(mlflow, args.experiment)


if __name__ == "__main__":
    main()
