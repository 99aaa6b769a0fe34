"""llmop development tooling: everything that is not shipped in the operator image."""
