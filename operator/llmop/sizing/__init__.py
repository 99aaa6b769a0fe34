"""Sizing: which GPU type, quantization and TP cost least for an SLO and a load (pure; plan + autoscale capacity)."""
