"""Dataset readers: Cityscapes, anomaly benchmarks (Fishyscapes, Road Anomaly, SMIYC)."""
