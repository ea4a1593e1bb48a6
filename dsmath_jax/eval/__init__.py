"""Evaluation (paper §2.2.1, §3.2, §4.2 tables): answer extraction, paper-faithful grading,
greedy / maj@k / pass@k, and the `eval` task.

The grading modules (answer, normalize, grader, metrics) import neither jax nor the model, so
the GRPO reward and the data pipeline can use them in any process.
"""
