"""Training tools (torch): synthetic world, supervised training, calibration, fine-tuning.

Not part of the runtime package; run from the repository root, e.g.
``python -m training.train --config training/configs/demo.yaml``.
"""
