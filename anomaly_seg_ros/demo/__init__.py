"""The one-command demo: a synthetic drive as a rosbag, replayed into the real detector node,
recorded, and turned into a report (video, contact sheet, metrics, latency).

Pieces, in the order :func:`anomaly_seg_ros.demo.pipeline.run_demo` uses them:
:mod:`~anomaly_seg_ros.demo.drive` (frames with ground truth, camera moving forward),
:mod:`~anomaly_seg_ros.demo.drive_bag` (the MCAP input bag),
:mod:`~anomaly_seg_ros.demo.node_process` (``detector_node`` as a subprocess),
:mod:`anomaly_seg_ros.ros.lockstep` (replay over DDS, frame by frame, and recording),
:mod:`~anomaly_seg_ros.demo.summary` (the report, from the two bags) with
:mod:`~anomaly_seg_ros.demo.results` (frame counts, metrics against ground truth),
:mod:`~anomaly_seg_ros.demo.latency` (round trip, frame rate, node stages),
:mod:`~anomaly_seg_ros.demo.media` (video and contact sheet) and
:mod:`~anomaly_seg_ros.demo.report` (``report.md`` / ``report.json``).
"""
