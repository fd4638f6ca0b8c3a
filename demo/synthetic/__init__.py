"""A procedural driving world with Cityscapes labels, test anomalies and an OoD object bank.

Deterministic from a seed, numpy + OpenCV only. :class:`~demo.synthetic.scene.World`
renders frames; :mod:`demo.synthetic.generate` writes datasets in the real
Cityscapes, Fishyscapes and COCO layouts.
"""
