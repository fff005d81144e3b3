"""edgeps: real-time panoptic segmentation for edge devices.

The core package holds everything a runtime-only install needs (numpy, OpenCV, PyYAML):
categories and the panoptic id encoding, COCO/Cityscapes I/O, post-processing, metrics and
visualization. Torch, the export tools and the backends live in optional layers.
"""

__version__ = "0.1.0"

LABEL_DIVISOR = 1000
VOID_LABEL = -1
