"""pad_ufes_20 dataset."""
