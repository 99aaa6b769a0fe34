"""llmop: a Kubernetes operator for GPU LLM inference deployments."""

__version__ = "0.1.0"
