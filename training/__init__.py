"""The product's training tools (torch): supervised training, fine-tuning, SML calibration.

Not part of the runtime package; run from the repository root, e.g.
``python -m training.train --config training/configs/demo.yaml``.
"""
