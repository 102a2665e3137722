"""derm7pt (seven-point checklist) dataset builder (`derm7pt`)."""
