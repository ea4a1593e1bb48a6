"""The experiment's data: generated word problems (dsmath_jax/data/word_problems.py) split into
SFT records, RL questions and held-out test problems, written to WORKDIR/task/.

SFT sees the first half of the training records (worked solutions of the imperfect teacher),
RL the questions of the second half; the test problems use templates and number tuples that no
training problem uses. The overlap is computed from the records and must be 0.
"""
import json
import os

from dsmath_jax.data import word_problems


def write_jsonl(records, path: str) -> str:
  with open(path, "w") as f:
    for record in records:
      f.write(json.dumps(record) + "\n")
  return path


def read_jsonl(path: str) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def write_task(task_config, directory: str) -> dict:
  """WORKDIR/task/{sft,rl,test}.jsonl and overlap.json; returns {"sft", "rl", "test", "overlap"}.

  `task_config`: experiment_config.TaskConfig. Raises if a held-out problem shares its template
  and numbers with a training problem."""
  train, test = word_problems.generate(
      task_config.num_train, task_config.num_test, seed=task_config.seed, teacher_error=task_config.teacher_error,
      family=task_config.family, max_factor=task_config.max_factor, max_addend=task_config.max_addend,
      test_number_fraction=task_config.test_number_fraction)
  half = len(train) // 2
  splits = {"sft": train[:half], "rl": train[half:], "test": test}
  counts = word_problems.overlap(test, train)
  if counts["same_template_and_numbers"]:
    raise ValueError(f"{counts['same_template_and_numbers']} held-out problems share template and numbers "
                     "with a training problem")
  os.makedirs(directory, exist_ok=True)
  for name, records in splits.items():
    write_jsonl(records, os.path.join(directory, f"{name}.jsonl"))
  with open(os.path.join(directory, "overlap.json"), "w") as f:
    json.dump(counts, f, indent=1)
  return {**splits, "overlap": counts}
