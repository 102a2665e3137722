"""isic2018 dataset."""
