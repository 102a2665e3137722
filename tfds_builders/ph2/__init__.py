"""PH2 dataset builder (`ph2`)."""
