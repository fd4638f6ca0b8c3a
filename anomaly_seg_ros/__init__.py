"""Anomaly-aware semantic segmentation for ROS 2.

The core (this package without ``ros/``, ``networks/`` and the torch backend) imports
neither rclpy nor torch, so it runs on a car with only numpy, OpenCV and an inference
runtime installed.
"""

__version__ = "0.1.0"
