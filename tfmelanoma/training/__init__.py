"""Training: optimizers and schedules, resumable checkpoints, the run itself."""
