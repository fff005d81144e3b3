"""Streaming: frame sources, the latest-frame holder, the threaded pipeline and the tracker.

The path of a frame: ``sources`` (camera, video, RTSP, GStreamer, images, rosbag) ->
``capture`` (real-time: newest frame only; record: every frame, back-pressure) ->
``pipeline`` (preprocess -> backend -> post-process on threads with bounded queues) ->
``tracker`` (stable instance ids) -> consumers (``edgeps.apps.consumers``).
Torch-free: a runtime-only install streams.
"""
