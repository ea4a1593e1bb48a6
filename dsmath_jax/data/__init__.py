"""Loaders from records to packed, sharded training batches (grain; checkpointable)."""
