"""isic2020 dataset."""
