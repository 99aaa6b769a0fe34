"""llmop.catalog package."""
