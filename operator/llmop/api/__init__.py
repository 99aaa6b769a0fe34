"""The llmop.io/v1alpha1 API: spec and status models, the CRD generated from them."""
