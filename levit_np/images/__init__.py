"""Images: the official evaluation transform, ImageNet labels, and classifying batches of photos."""
