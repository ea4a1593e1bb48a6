"""DeepSeekMath corpus collection (paper §2.1): iterative fastText recall over web crawls -> TFDS `dsmath_corpus`.

No jax here: the stages run on CPU workers (in-process or Apache Beam). Entry point: `pipeline.run(config, workdir)`.
"""
