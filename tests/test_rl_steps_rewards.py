"""Step splitting (process supervision, §4.1.3) and reward scoring with per-sample failures."""
import math

import numpy as np
import pytest

from dsmath_jax.rl import rewards, steps
from dsmath_jax.tokenizer import ByteTokenizer


def test_split_text_keeps_text_and_merges_blank_lines():
  text = "First, 2+3=5.\n\nThen 5*4=20.\nSo \\boxed{20}"
  parts = steps.split_text(text)
  assert parts == ["First, 2+3=5.\n", "\nThen 5*4=20.\n", "So \\boxed{20}"]
  assert "".join(parts) == text
  assert steps.split_text("a;b;", ";") == ["a;", "b;"]
  assert steps.prefixes("x\ny\nz") == ["x\n", "x\ny\n", "x\ny\nz"]
  with pytest.raises(ValueError, match="step_delimiter"):
    steps.split_text("a", "")


def test_step_end_tokens_on_bytes():
  tokenizer = ByteTokenizer()
  text = "ab\ncd\n\nef"
  ids = tokenizer.encode(text)
  # Steps "ab\n" (ends at index 2), "cd\n" (5), "\nef" (blank line merged; ends at the last token 8).
  assert steps.step_end_tokens(ids, tokenizer) == [2, 5, 8]
  assert steps.step_end_tokens(tokenizer.encode("ab\ncd\n"), tokenizer) == [2, 5]
  assert steps.step_end_tokens(tokenizer.encode("ab\n\ncd"), tokenizer, "\n\n") == [3, 5]
  assert steps.step_end_tokens([], tokenizer) == []


class _PiecesTokenizer:
  """Multi-character tokens, with the delimiter split across two of them."""
  pieces = ["Step one", ".\n", "\n", "Step", " two", "\n", "\nDone"]

  def decode(self, ids):
    return "".join(self.pieces[i] for i in ids)


def test_step_end_tokens_with_a_delimiter_across_tokens():
  ids = list(range(7))
  assert steps.step_end_tokens(ids, _PiecesTokenizer(), "\n\n") == [2, 6]
  assert steps.step_end_tokens(ids, _PiecesTokenizer(), "\n") == [1, 5, 6]


def test_score_marks_raising_and_nan_rewards():
  def reward(output, gold):
    if output == "boom":
      raise RuntimeError("grader crashed")
    if output == "nan":
      return math.nan
    if output == "text":
      return "not a number"
    return float(output == gold)

  result = rewards.score(reward, ["7", "boom", "8", "nan", "text"], ["7"] * 5)
  np.testing.assert_array_equal(result.valid, [True, False, True, False, False])
  np.testing.assert_array_equal(result.values[result.valid], [1.0, 0.0])
  assert result.num_invalid == 3
  assert result.errors[0].startswith("sample 1: RuntimeError: grader crashed")
  assert "sample 3" in result.errors[1] and "nan" in result.errors[1]
  assert "sample 4" in result.errors[2]
  with pytest.raises(ValueError, match="2 outputs but 1"):
    rewards.score(reward, ["a", "b"], ["a"])


def test_check_scores_marks_non_finite():
  result = rewards.check_scores([0.5, np.nan, np.inf, 0.1])
  np.testing.assert_array_equal(result.valid, [True, False, False, True])
  assert len(result.errors) == 2 and "sample 1" in result.errors[0]
