"""Evaluation (paper §2.2.1, §3.2, §4.2; Tables 2, 3, 5): the `eval` task over the benchmark
definitions of dsmath_jax/benchmarks, graded by dsmath_jax/grading; greedy / maj@k / pass@k,
per-benchmark reports and the table across benchmarks; `evaluate.evaluate_benchmark` for trainers,
`during_training.make_evaluator` the callback the entry point hands them (config.benchmark_eval).
"""
