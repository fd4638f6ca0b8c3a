"""Test-session isolation: a private ROS domain and localhost-only discovery."""

import os
import random

# Set before any rclpy import so that every node a test starts (in-process or as a
# subprocess inheriting the environment) talks only to this test session.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 101)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
