"""The ROS 2 node (``edgeps-ros2``, ``edgeps ros2``): needs rclpy (``pip install 'edgeps[ros2]'``).

``params`` (validation, params-file reading, cameras from topics) and ``compressed`` (JPEG/PNG
``CompressedImage`` decoding) are rclpy-free; ``node`` imports rclpy. The core (``edgeps/``)
never imports any of them.
"""
