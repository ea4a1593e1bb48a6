"""The Colab notebooks execute top to bottom (nbclient, kernel python3) on their CI settings.

DSMATH_NOTEBOOK_TINY=1 shrinks each notebook's settings cell; DSMATH_NOTEBOOK_WORKDIR keeps its outputs
in the test's tmp dir. After the notebook's own cells, a check cell compares what the notebook computed
against references that are not our code (numpy formulas, the files the tasks wrote, ChatML text).
"""
import os

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")

CHECKS = {
    "01_quickstart_and_checkpoints.ipynb": r'''
import json
assert summary == json.load(open(os.path.join(WORKDIR, "summary.json")))
pages = [r["pages"] for r in summary["corpus"]["rounds"]]
assert pages == sorted(pages) and pages[-1] > pages[0], pages
assert summary["pretrain"]["eval_loss"]["last"] < summary["pretrain"]["eval_loss"]["first"]
assert 0 <= summary["eval_grpo"]["accuracy"] <= 100
assert len(completions) == 3 and all(c.finish_reason in ("eos", "length") for c in completions)
# SmolLM2's chat template is ChatML; the greedy answer decodes to its text and has log-probs <= 0.
assert chat_prompt.endswith("<|im_start|>user\n" + question + "<|im_end|>\n<|im_start|>assistant\n"), chat_prompt
assert answer.text == tokenizer.decode(answer.token_ids) and answer.text.strip()
assert len(answer.token_ids) <= MAX_NEW_TOKENS and max(answer.logprobs) <= 0.0
assert model_config.num_layers == 30 and model_config.vocab_size == 49152
assert len(samples) == 4 and all(s.prompt_ids == prompt for s in samples)
''',
    "02_grpo_step_by_step.ipynb": r'''
r = rewards
mean, std = r.mean(axis=1, keepdims=True), r.std(axis=1, keepdims=True)
expected = np.where(std > 0, (r - mean) / (std + 1e-6), 0.0)
np.testing.assert_allclose(advantages, expected, rtol=1e-5, atol=1e-6)
assert list(zero_group) == [False, False, True]
for a in (1.0, -1.0):                                          # min(r A, clip(r, 0.8, 1.2) A)
  np.testing.assert_allclose(curves[a], np.minimum(ratios * a, np.clip(ratios, 0.8, 1.2) * a), rtol=1e-5, atol=1e-6)
  outside = (ratios > 1.201) if a > 0 else (ratios < 0.799)     # clip boundaries themselves excluded
  assert np.all(slopes[a][outside] == 0) and np.allclose(slopes[a][np.abs(ratios - 1) < 0.19], a, rtol=1e-4)
np.testing.assert_allclose(k3, pi_ref[tokens] / pi_theta[tokens] - np.log(pi_ref[tokens] / pi_theta[tokens]) - 1,
                           rtol=1e-4, atol=1e-6)
assert k3.min() >= 0 and abs(k3.mean() - exact_kl) < 4 * k3.std() / np.sqrt(len(k3))
assert len(completions) == config.data.questions_per_step * config.rl.group_size
assert metrics["max_logprob_gap"] < 1e-4
assert [m["step"] for m in history] == list(range(2, RL_STEPS + 2)) and all(m["kl"] >= 0 for m in history)
''',
    "03_corpus_pipeline.ipynb": r'''
assert len(rounds) == NUM_ROUNDS
assert len(records) == summary["write"]["counts"]["write/pages"] == rounds[-1]["collected"]
assert sum(by_round.values()) == len(records) and set(by_round) <= set(range(1, NUM_ROUNDS + 1))
assert rounds[-1]["collected"] >= rounds[0]["collected"]
assert all(0.0 <= s <= 1.0 for s in scores) and min(scores) >= rounds[-1]["threshold"]
for round_index in range(1, NUM_ROUNDS + 1):                   # the histogram counts every scored page
  histogram = np.load(os.path.join(corpus_dir, f"round_{round_index}", "score_histogram.npy"))
  assert histogram.sum() == rounds[round_index - 1]["scored"]
''',
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_stored_notebooks_show_their_outputs(name):
  """Opened on GitHub or Colab, a notebook shows what it computed (figures included) without running:
  each is stored executed top to bottom at its full settings (stderr progress bars dropped), without errors."""
  notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
  code = [c for c in notebook.cells if c.cell_type == "code"]
  outputs = [o for c in code for o in c.outputs]
  assert any("image/png" in o.get("data", {}) for o in outputs)
  assert not any(o.output_type == "error" for o in outputs)
  assert all(c.execution_count is not None for c in code), "stored partly executed"
  assert os.path.getsize(os.path.join(NOTEBOOKS, name)) < 1_500_000


def test_every_notebook_is_checked():
  assert sorted(n for n in os.listdir(NOTEBOOKS) if n.endswith(".ipynb")) == sorted(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_notebook_executes(name, tmp_path, monkeypatch):
  notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
  first_code = next(c for c in notebook.cells if c.cell_type == "code")
  assert "import dsmath_jax" in first_code.source and "pip install" in first_code.source   # the Colab install
  assert first_code.source.count("REPO_URL = ") == 1 and '"git", "clone"' in first_code.source  # one URL, set once
  assert any("parameters" in c.metadata.get("tags", []) and "DSMATH_NOTEBOOK_TINY" in c.source
             for c in notebook.cells)
  for cell in notebook.cells:        # CI runs from a blank slate: nothing depends on the stored outputs
    if cell.cell_type == "code":
      cell.outputs, cell.execution_count = [], None
  notebook.cells.append(nbformat.v4.new_code_cell(CHECKS[name]))
  monkeypatch.setenv("DSMATH_NOTEBOOK_TINY", "1")
  monkeypatch.setenv("DSMATH_NOTEBOOK_WORKDIR", str(tmp_path))
  monkeypatch.setenv("MPLBACKEND", "Agg")
  # One CPU device, as in Colab's CPU runtime (conftest forces 8 simulated ones for the other tests).
  monkeypatch.setenv("XLA_FLAGS", " ".join(
      flag for flag in os.environ.get("XLA_FLAGS", "").split()
      if not flag.startswith("--xla_force_host_platform_device_count")))
  client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": ROOT}})
  client.execute()
