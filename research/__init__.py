"""Experiments that reproduce the tables under ``research/results/``."""
