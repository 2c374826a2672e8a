"""Deploy targets. `sagemaker` works against AWS SageMaker and against modelyard's local endpoint service."""

from modelyard.deploy.sagemaker import DeploymentError, DeployOptions, SageMakerDeployer

__all__ = ["DeployOptions", "DeploymentError", "SageMakerDeployer"]
