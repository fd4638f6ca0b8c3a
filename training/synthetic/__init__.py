"""A procedural driving world with Cityscapes labels, test anomalies and an OoD object bank.

Deterministic from a seed, numpy + OpenCV only. :class:`~training.synthetic.scene.World`
renders frames; :mod:`training.synthetic.generate` writes datasets in the real
Cityscapes, Fishyscapes and COCO layouts.
"""
