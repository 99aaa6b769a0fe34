"""llmop.plan package."""
