"""MNO training: truncated BPTT, losses, schedules, checkpoints, the `noa train` pipeline."""
