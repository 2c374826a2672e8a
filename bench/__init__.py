"""Side-by-side benchmarks: modelyard's services against MLflow's server on the same machine.

`python -m bench [--quick] [--scale N]` (or `make bench` / `make bench-quick`); see bench/README.md.
"""
