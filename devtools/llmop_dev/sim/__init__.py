"""llmop_dev.sim package."""
