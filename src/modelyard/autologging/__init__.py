"""Autologging: patch a library's training calls so each fit logs itself, as `mlflow.autolog` does.

`config` holds each integration's options, `patching` swaps methods for wrappers that call the
original first and never let a logging error reach the user, `runs` starts (and ends) a run when none
is active. The integrations (`sklearn/autologging.py`, `xgboost/autologging.py`) decide what a fit
logs; `modelyard.autolog()` (`universal_autolog.py`) turns on every integration whose library is installed.
"""
