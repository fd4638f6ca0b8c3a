"""The ROS 2 layer: the detector node, diagnostics, bag playback, lock-step replay.

This is the only package that imports rclpy and ROS message packages. Everything that
does not need them (message <-> array conversion, bag reading/writing) lives in
:mod:`anomaly_seg_ros.io`, which the offline bag tools use without rclpy; the output table
and the parameter specs are plain data in the core (``output_table``, ``parameter_specs``).
"""
