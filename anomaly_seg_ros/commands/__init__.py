"""Sub-commands of ``anomaly-seg``; see :mod:`anomaly_seg_ros.cli`."""
