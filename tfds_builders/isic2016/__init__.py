"""ISIC 2016 (ISBI 2016) challenge dataset builder (`isic2016`)."""
