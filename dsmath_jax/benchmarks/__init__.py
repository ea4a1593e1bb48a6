"""The paper's evaluation benchmarks as data: one definition each (catalog.py), the readers of
their released files (readers.py), their prompts (prompts.py) and question/decontamination
texts (load.py). Below the corpus and dataset stages, so that decontamination and evaluation
read the same definitions; grading (what a right answer is) is grading/kinds.py.
"""
