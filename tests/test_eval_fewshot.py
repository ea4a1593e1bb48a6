"""Few-shot prompts for base checkpoints: exemplars from the training splits only, reproducible,
in the layout the extractor reads."""
from dsmath_jax.eval import benchmark, fewshot
from dsmath_jax.grading import answer


def test_gsm8k_8_shot_from_train_split(shared_data):
  exemplars = fewshot.select_exemplars(str(shared_data / "gsm8k/train.jsonl"), "gsm8k", seed=0)
  assert len(exemplars) == 8
  assert exemplars == fewshot.select_exemplars(str(shared_data / "gsm8k/train.jsonl"), "gsm8k", seed=0)
  assert exemplars != fewshot.select_exemplars(str(shared_data / "gsm8k/train.jsonl"), "gsm8k", seed=1)
  test_questions = {q["question"] for q in benchmark.load_questions(str(shared_data / "gsm8k/test.jsonl"))}
  assert not {e["question"] for e in exemplars} & test_questions
  for e in exemplars:
    assert "<<" not in e["solution"] and e["solution"].endswith("$.")   # calculator notes removed
    assert answer.extract_answer(e["solution"]) is not None
  prompt = fewshot.render("How many legs do 3 cats have?", exemplars, "gsm8k")
  assert prompt.count("Question: ") == 9 and prompt.endswith("Question: How many legs do 3 cats have?\nAnswer:")


def test_math_4_shot_spreads_over_subjects(shared_data):
  path = str(shared_data / "math/train.jsonl")
  exemplars = fewshot.select_exemplars(path, "math", seed=0)
  assert len(exemplars) == 4
  train = {q["question"]: q for q in benchmark.load_questions(path, split="train")}
  assert len({train[e["question"]]["subject"] for e in exemplars}) == 4
  assert all(len(e["solution"]) <= fewshot.MAX_SOLUTION_CHARS and "\\boxed" in e["solution"] for e in exemplars)
  prompt = fewshot.render("What is $1+1$?", exemplars, "math")
  assert prompt.endswith("Problem:\nWhat is $1+1$?\n\nSolution:")


def test_truncate_at_next_exemplar():
  text = " 2 + 2 = 4. The answer is $\\boxed{4}$.\n\nQuestion: Next one?\nAnswer: 7"
  assert fewshot.truncate(text, "gsm8k") == " 2 + 2 = 4. The answer is $\\boxed{4}$."
  assert fewshot.truncate("So $\\boxed{3}$.\nProblem:\nmore", "math") == "So $\\boxed{3}$."
  assert answer.extract_answer(fewshot.truncate(text, "gsm8k")) == "4"
