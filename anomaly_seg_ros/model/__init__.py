"""What a model is, apart from its weights: the facts every backend, the pipeline, the
exporters and the evaluation read.

* :mod:`.summary` - the graph's input and output names and :class:`LogitSummary`, the
  per-pixel maps the anomaly head computes (label, max/min logit, log-sum-exp, entropy,
  and the refined score of a graph that refines);
* :mod:`.sidecar` - :class:`ModelInfo`, the JSON sidecar beside every model file (classes,
  input size, normalisation, precision, architecture, the graph's refinement);
* :mod:`.graph_refinement` - the score and refinement choice a graph bakes in;
* :mod:`.classes` - class tables (Cityscapes), road and void conventions;
* :mod:`.sml_stats` - per-class max-logit statistics for Standardized Max Logits;
* :mod:`.bundled` - where the bundled model and its calibrated parameters live.

Plain numpy and JSON: no runtime, no rclpy, no torch.
"""
