"""Data: training targets from panoptic ground truth, built-in synthetic data, dataset loaders.

Everything here is numpy/OpenCV only, so a runtime-only install can evaluate on it.
"""
