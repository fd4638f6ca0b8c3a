"""The one-command demo: a synthetic drive as a rosbag, replayed into the real detector node,
recorded, and turned into a report (video, contact sheet, metrics, latency). Not installed:
``python -m demo`` (``make demo``) from the checkout. Beside it the synthetic world
(:mod:`demo.synthetic`) and the bundled model's build (:mod:`demo.model`).

Pieces, in the order :func:`demo.pipeline.run_demo` uses them:
:mod:`~demo.drive` (frames with ground truth, camera moving forward),
:mod:`~demo.drive_bag` (the MCAP input bag),
:mod:`~demo.node_process` (``detector_node`` as a subprocess),
:mod:`anomaly_seg_ros.ros.lockstep` (replay over DDS, frame by frame, and recording),
:mod:`~demo.summary` (the report, from the two bags) with
:mod:`~demo.results` (frame counts, metrics against ground truth),
:mod:`~demo.latency` (round trip, frame rate, node stages),
:mod:`~demo.media` (video and contact sheet) and
:mod:`~demo.report` (``report.md`` / ``report.json``).
"""
