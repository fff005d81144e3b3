"""Reading and writing panoptic data formats (COCO panoptic, Cityscapes panoptic)."""
