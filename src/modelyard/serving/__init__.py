"""The scoring service: one model per process, MLflow's scoring protocol, SageMaker's container contract."""
