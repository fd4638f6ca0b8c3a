"""The ROS 2 layer: the detector node, diagnostics, bag playback, lock-step replay.

This is the only package that imports rclpy and ROS message packages. Everything that
does not need them (message <-> array conversion, bag reading/writing, the output topic
table) lives in :mod:`anomaly_seg_ros.io`, which the offline bag tools use without rclpy.
"""
