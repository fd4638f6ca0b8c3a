"""Experiments that reproduce the tables under ``training/results/``."""
