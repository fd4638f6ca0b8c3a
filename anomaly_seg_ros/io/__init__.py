"""Message and bag I/O without rclpy: the one layer every reader and writer of images uses.

* :mod:`~anomaly_seg_ros.io.image` - ``sensor_msgs/Image`` fields <-> numpy arrays;
* :mod:`~anomaly_seg_ros.io.compressed` - ``sensor_msgs/CompressedImage`` (JPEG/PNG);
* :mod:`~anomaly_seg_ros.io.messages` - whole messages (rclpy or ``rosbags`` alike) to
  arrays: RGB, scores, labels, stamps;
* :mod:`~anomaly_seg_ros.io.bags` - open/read/write rosbags, one typestore policy, topic
  picking;
* :mod:`~anomaly_seg_ros.io.outputs` - packing the node's images (which outputs there are:
  :mod:`anomaly_seg_ros.output_table`);
* :mod:`~anomaly_seg_ros.io.bag_run` - ``anomaly-seg bag run`` (a Detector over a bag).

Nothing here imports rclpy: the ROS layer (:mod:`anomaly_seg_ros.ros`) builds on it.
"""
