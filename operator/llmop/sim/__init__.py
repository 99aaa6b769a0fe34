"""llmop.sim package."""
