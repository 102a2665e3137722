"""Kaggle "Skin Cancer: Malignant vs. Benign" dataset builder (`kaggle_fanconic`)."""
