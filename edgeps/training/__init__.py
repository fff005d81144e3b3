"""Training (torch): config, data pipeline with augmentation and targets, losses, loop."""
