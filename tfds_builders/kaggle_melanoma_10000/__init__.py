"""kaggle_melanoma_10000 dataset."""
