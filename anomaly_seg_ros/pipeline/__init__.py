"""One frame's host path, in the order :class:`~anomaly_seg_ros.detector.Detector` runs it.

* :mod:`.preprocess` - camera frame → the network's normalised input (area resize,
  ``aspect``), the image-size limit, resizing maps back to camera size;
* (the backend runs the graph: :mod:`anomaly_seg_ros.backends`)
* :mod:`.scores` - the anomaly scores of a logit summary;
* :mod:`.refine` - SML boundary suppression, dilated smoothing, VDE road region.

  The score formulas and each refinement's parameters and derived constants are
  specified once, below this folder, in :mod:`anomaly_seg_ros.refinement_spec`: the graph
  form (:mod:`anomaly_seg_ros.networks.refine_graph`) and the settings
  (:mod:`anomaly_seg_ros.config`) read them too;
* :mod:`.postprocess` - score → refinement → camera size → thresholded mask;
* :mod:`.visualize` - the colour labels and the overlay, drawn only on request;
* :mod:`.strips` - row strips that let the host stages use several threads.

No rclpy, no torch: the node, ``detect``, ``bag run`` and the evaluation share it.
"""
