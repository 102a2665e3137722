"""Segmentation models (AER-Net and baselines); importing registers them."""
