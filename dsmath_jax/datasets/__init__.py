"""Math datasets as TFDS ArrayRecord (no TensorFlow): question records and SFT records.

Read with `load_source(name, split, data_dir)`; convert JSONL with `read_jsonl`.
"""
from dsmath_jax.jsonl import BadRecordError, read_jsonl
from dsmath_jax.datasets.source import load_source

__all__ = ["BadRecordError", "load_source", "read_jsonl"]
