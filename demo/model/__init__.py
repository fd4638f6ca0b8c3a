"""The bundled demo model's build: train, fine-tune, calibrate and export ``models/demo/``
(:mod:`demo.model.make`), its model card (:mod:`demo.model.card`), its node settings
chosen on held-out frames (:mod:`demo.model.settings`) and its int8 version
(:mod:`demo.model.quantize`). They drive the product's training tools (``training/``)
on the synthetic world (:mod:`demo.synthetic`)."""
