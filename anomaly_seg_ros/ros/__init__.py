"""The ROS 2 layer: the detector node, image conversion, diagnostics, bag playback.

This is the only package that imports rclpy and ROS message packages, and only in the
modules that need them: ``image_conversion`` and ``compressed_image`` are plain
numpy/OpenCV, so the offline bag tools use them without rclpy.
"""
