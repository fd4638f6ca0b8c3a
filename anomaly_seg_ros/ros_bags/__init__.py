"""Rosbag input and output with the ``rosbags`` library (no rclpy, no rosbag2 install):
the offline ``anomaly-seg bag run`` and the bag reading behind ``anomaly-seg bag play``."""
