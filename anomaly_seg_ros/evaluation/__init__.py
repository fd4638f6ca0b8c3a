"""Evaluation toolkit: pixel, segmentation and component metrics, reports, calibration.

Nothing here imports torch or rclpy at module level; :mod:`.oodmc` imports torch when
called and :mod:`.bag` imports ``rosbags`` when called.
"""
