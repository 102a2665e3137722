"""ISIC 2017 challenge dataset builder (`isic2017`)."""
