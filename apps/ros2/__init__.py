"""The ROS 2 node (``edgeps-ros2``, ``edgeps ros2``): needs rclpy (``pip install 'edgeps[ros2]'``).

``params`` is rclpy-free (validation, params-file reading); ``node`` imports rclpy. The core
(``edgeps/``) never imports either.
"""
