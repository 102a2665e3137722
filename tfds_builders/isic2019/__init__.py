"""isic2019 dataset."""
