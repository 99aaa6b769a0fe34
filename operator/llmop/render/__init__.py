"""llmop.render package."""
