"""llmop.autoscale package."""
