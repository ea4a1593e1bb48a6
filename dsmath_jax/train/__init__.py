"""Training core: train state, optimizer, pure sharded step, losses, metrics, checkpoints, loops."""
