"""llmop.controller package."""
