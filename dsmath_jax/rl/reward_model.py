"""Reward models (paper §4.1.2-§4.1.3, §4.2): a scalar head on the decoder, their losses,
Math-Shepherd process labels and a PRM800K reader.

One module serves both kinds. The head reads the final hidden state at every position:
  outcome RM: trained at the last response token on "is the final answer correct";
  process RM: trained at the last token of each step on "is this step good" (Math-Shepherd:
              can some completion from here still reach the gold answer).
Both are binary cross-entropy on the logit; a reward is the sigmoid of the score. The
decoder parameters sit under "base", exactly the policy's tree, so a pretrained or SFT
checkpoint initializes it directly (the paper trains RMs from the base model, lr 2e-5).
"""
import dataclasses
from collections.abc import Callable, Iterator, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dsmath_jax.model.llama import LlamaConfig, Transformer
from dsmath_jax.rl import steps as steps_lib


class RewardModel(nn.Module):
  """Transformer(return_hidden=True) + Dense(1): one score per position.  -> [batch, seq].

  PPO's value model is this module too (rl/ppo.py): on shared-prompt rows it passes
  `prefix_segment_ids` and reads only `output_positions` ([batch, n] -> scores [batch, n])."""
  config: LlamaConfig

  @nn.compact
  def __call__(self, tokens, positions=None, segment_ids=None, prefix_segment_ids=None, output_positions=None):
    hidden = Transformer(self.config, name="base")(tokens, positions, segment_ids, return_hidden=True,
                                                   prefix_segment_ids=prefix_segment_ids,
                                                   output_positions=output_positions)
    head = nn.Dense(1, dtype=jnp.float32, param_dtype=jnp.float32,
                    kernel_init=nn.with_logical_partitioning(nn.initializers.zeros, ("embed", None)),
                    bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (None,)),
                    name="score_head")
    return head(hidden.astype(jnp.float32))[..., 0]                     # [batch, seq]


def init_params(config: LlamaConfig, rng, base_params=None, seq_len: int = 8):
  """Boxed RM params; `base_params` (plain arrays, e.g. load_pretrained(...).params) replace the
  random decoder (its lm_head is dropped). The head starts at zero: every first score is 0.5, no random preference."""
  # The reference kernel for the dummy row (llama.init_params: kernels hold no parameters).
  params = RewardModel(dataclasses.replace(config, attention="xla")).init(
      rng, jnp.zeros((1, seq_len), jnp.int32))["params"]
  if base_params is not None:
    params = dict(params)
    # The policy's lm_head (absent when embeddings are tied) has no role in a reward model.
    base_params = {name: value for name, value in base_params.items() if name in params["base"]}
    params["base"] = jax.tree.map(
        lambda box, value: box.replace_boxed(jnp.asarray(value)) if isinstance(box, nn.Partitioned)
        else jnp.asarray(value), params["base"], base_params,
        is_leaf=lambda x: isinstance(x, nn.Partitioned))
  return params


def rm_loss_terms(scores, batch):
  """(loss_sum, weight, aux_sums): BCE-with-logits at labelled positions.

  batch: `label_mask` [batch, seq] (1 where a label sits: the last response token for an
  outcome RM, each step's last token for a process RM) and `labels` [batch, seq] in [0, 1].
  """
  mask = batch["label_mask"].astype(jnp.float32)
  labels = batch["labels"].astype(jnp.float32)
  bce = jax.nn.softplus(scores) - labels * scores                     # -log sigmoid(+-score)
  correct = ((scores > 0) == (labels > 0.5)).astype(jnp.float32)
  return (jnp.sum(bce * mask), jnp.sum(mask),
          {"accuracy": jnp.sum(correct * mask), "score": jnp.sum(jax.lax.stop_gradient(scores) * mask)})


def make_loss_fn():
  """loss_fn(params, batch, apply_fn) for train_step; apply_fn -> scores [batch, seq]."""
  def loss_fn(params, batch, apply_fn):
    scores = apply_fn(params, batch["tokens"], positions=batch["positions"],
                      segment_ids=batch["segment_ids"])
    return rm_loss_terms(scores, batch)
  return loss_fn


# ---- Examples and batches -------------------------------------------------------------------

@dataclasses.dataclass
class RMExample:
  """One scored sequence: prompt + response tokens, labels at positions inside the response."""
  prompt_ids: list[int]
  response_ids: list[int]
  label_positions: list[int]      # indices into response_ids (inclusive step ends / last token)
  labels: list[float]


def outcome_example(prompt_ids, response_ids, correct: bool) -> RMExample:
  return RMExample(list(prompt_ids), list(response_ids), [max(len(response_ids) - 1, 0)],
                   [1.0 if correct else 0.0])


def process_example(prompt_ids, step_token_ids: Sequence[Sequence[int]], step_labels) -> RMExample:
  """Response = the steps' tokens concatenated; a label at the last token of each step."""
  response, positions = [], []
  for ids in step_token_ids:
    response.extend(int(t) for t in ids)
    positions.append(len(response) - 1)
  keep = [i for i, p in enumerate(positions) if p >= 0]
  return RMExample(list(prompt_ids), response, [positions[i] for i in keep],
                   [float(step_labels[i]) for i in keep])


def make_batch(examples: Sequence[RMExample], seq_len: int, pad_id: int = 0) -> dict:
  """Right-padded rows [len(examples), seq_len]; over-long rows are cut and lose their late labels."""
  size = len(examples)
  batch = {"tokens": np.full((size, seq_len), pad_id, np.int32),
           "segment_ids": np.zeros((size, seq_len), np.int32),
           "positions": np.zeros((size, seq_len), np.int32),
           "label_mask": np.zeros((size, seq_len), np.float32),
           "labels": np.zeros((size, seq_len), np.float32)}
  for row, example in enumerate(examples):
    ids = (list(example.prompt_ids) + list(example.response_ids))[:seq_len]
    batch["tokens"][row, :len(ids)] = ids
    batch["segment_ids"][row, :len(ids)] = 1
    batch["positions"][row, :len(ids)] = np.arange(len(ids))
    for position, label in zip(example.label_positions, example.labels):
      index = len(example.prompt_ids) + position
      if index < seq_len:
        batch["label_mask"][row, index] = 1.0
        batch["labels"][row, index] = label
  return batch


def scores_at(scores, positions):
  """Gathers scores [batch, seq] at per-row positions [batch, k] -> sigmoid rewards [batch, k]."""
  gathered = np.take_along_axis(np.asarray(scores, np.float32), np.asarray(positions, np.int64), axis=1)
  return 1.0 / (1.0 + np.exp(-gathered))


# ---- Math-Shepherd process labels (Wang et al. 2023; paper §4.1.3) --------------------------

def math_shepherd_labels(solutions: Sequence[tuple[str, str]],
                         complete: Callable[[list[tuple[int, str]], int], list[list[str]]],
                         grade: Callable[[str, str], bool], *, num_completions: int = 8,
                         delimiter: str = "\n", soft: bool = False) -> list[list[float]]:
  """Per-step labels of each (solution_text, gold): from every step prefix, sample N
  completions with the policy; "hard" label = 1 if ANY reaches the gold answer ("soft" = the
  fraction that do). The last step's label is the grade of the full solution itself.

  complete(requests, n) -> n continuation texts for each (solution_index, prefix_text)
  request; the caller renders the question's prompt + prefix and samples (iterative.py wires
  the sampler in).
  """
  all_prefixes, owners = [], []
  for index, (text, _) in enumerate(solutions):
    for prefix in steps_lib.prefixes(text, delimiter)[:-1]:
      all_prefixes.append(prefix)
      owners.append(index)
  requests = list(zip(owners, all_prefixes))
  continuations = complete(requests, num_completions) if requests else []
  labels = [[] for _ in solutions]
  for prefix, owner, samples in zip(all_prefixes, owners, continuations):
    gold = solutions[owner][1]
    hits = [bool(grade(prefix + c, gold)) for c in samples]
    labels[owner].append(float(np.mean(hits)) if soft else float(any(hits)))
  for index, (text, gold) in enumerate(solutions):
    if steps_lib.split_text(text, delimiter):
      labels[index].append(1.0 if grade(text, gold) else 0.0)
  return labels


# ---- PRM800K (Lightman et al. 2023) ---------------------------------------------------------

def read_prm800k(path: str, *, neutral_label: float = 1.0) -> Iterator[dict]:
  """PRM800K lines -> {"question", "answer", "steps": [str], "labels": [float]}.

  Follows the labeller's path: at each step the chosen completion, else the human one; a step
  where neither exists ends the path at its first rated completion (how "found_error"
  solutions end). Ratings +1 -> 1.0, -1 -> 0.0, 0 -> `neutral_label` (PRM800K's "neutral";
  1.0 treats "okay but not progressing" as not wrong). A null rating ends the path.
  Errors name the file, line and field.
  """
  ratings = {1: 1.0, -1: 0.0, 0: float(neutral_label)}
  from dsmath_jax.jsonl import json_objects
  for line_number, record in json_objects(path):
    where = f"{path}:{line_number}"
    question, label = record.get("question"), record.get("label")
    if not isinstance(question, dict) or not isinstance(question.get("problem"), str):
      raise ValueError(f"{where}: field 'question.problem' missing or not a string")
    if not isinstance(label, dict) or not isinstance(label.get("steps"), list):
      raise ValueError(f"{where}: field 'label.steps' missing or not a list")
    texts, values = [], []
    for step_number, step in enumerate(label["steps"]):
      field = f"label.steps[{step_number}]"
      completions = step.get("completions") or []
      chosen, human = step.get("chosen_completion"), step.get("human_completion")
      if chosen is not None:
        if not isinstance(chosen, int) or not 0 <= chosen < len(completions):
          raise ValueError(f"{where}: field '{field}.chosen_completion'={chosen!r} is not an "
                           f"index into {len(completions)} completions")
        pick, last = completions[chosen], False
      elif human is not None:
        pick, last = dict(human, rating=1 if human.get("rating") is None else human["rating"]), False
      else:
        rated = [c for c in completions if c.get("rating") is not None]
        if not rated:
          break
        pick, last = min(rated, key=lambda c: c["rating"]), True     # the error that ended it
      if not isinstance(pick.get("text"), str):
        raise ValueError(f"{where}: field '{field}' completion has no 'text' string")
      if pick.get("rating") not in ratings:
        if pick.get("rating") is None:
          break
        raise ValueError(f"{where}: field '{field}' rating={pick.get('rating')!r} is not -1, 0 or 1")
      texts.append(pick["text"])
      values.append(ratings[pick["rating"]])
      if last:
        break
    if texts:
      yield {"question": question["problem"], "answer": str(question.get("ground_truth_answer", "")),
             "steps": texts, "labels": values}


# ---- Saving and loading ---------------------------------------------------------------------

def save_reward_model(directory: str, config: LlamaConfig, params, tokenizer=None) -> str:
  """A load_pretrained-readable directory: the decoder as a tied-embedding model (a reward model
  has no lm_head) plus the `score_head` leaves, which load_pretrained keeps as extra leaves."""
  from dsmath_jax.model import loading
  tied = dataclasses.replace(config, tie_embeddings=True)
  return loading.save_pretrained(directory, tied, {**params["base"], "score_head": params["score_head"]},
                                 tokenizer)


def abstract_params(config: LlamaConfig):
  return jax.eval_shape(lambda: init_params(config, jax.random.key(0)))


def load_reward_model(path: str, mesh=None, rules=None):
  """(rm_config, params {"base", "score_head"}, shardings) from `save_reward_model`'s directory."""
  from dsmath_jax import sharding
  from dsmath_jax.model import loading
  pretrained = loading.load_pretrained(path, mesh=mesh, rules=rules)
  if "score_head" not in pretrained.params:
    raise ValueError(f"{path}: no 'score_head' parameters: not a reward model (train one with the "
                     "`reward_model` task)")
  base = {k: v for k, v in pretrained.params.items() if k != "score_head"}
  params = {"base": base, "score_head": pretrained.params["score_head"]}
  shardings = None
  if mesh is not None:
    shardings = sharding.tree_shardings(abstract_params(pretrained.config), mesh, rules)
    params = jax.device_put(params, shardings)
  return pretrained.config, params, shardings
