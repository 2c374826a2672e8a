"""Storage lifecycle: garbage collection of deleted runs and experiments, storage use, orphan sweeps."""
