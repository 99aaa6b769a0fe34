"""The honest autoscaling benchmark: independent engine physics, request-level traces, an emulated Prometheus."""
