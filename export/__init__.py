"""Export trained tfmelanoma models to TF.js for the offline web demo (`python -m export.tfjs`)."""
