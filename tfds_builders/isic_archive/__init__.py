"""isic_archive dataset."""
