"""Task `reward_model`: train an outcome or process reward model (paper §4.1.2-4.1.3, §4.2).

Labels come from (data.source):
  "policy"        the policy's own samples, graded by the grader (outcome), or labelled per step
                  as in Math-Shepherd: from each step prefix, N completions; the step is good if
                  any reaches the gold answer (process);
  "prm800k:PATH"  PRM800K lines (process; reward_model.read_prm800k);
  "jsonl:PATH"    {question, response, correct} (outcome) or {question, steps, labels} (process).
The model is the policy's decoder + a scalar head (reward_model.RewardModel), initialized from
`checkpoint` (paper: the base model, lr 2e-5), trained with BCE, saved to WORKDIR/model
(`save_reward_model`), which GRPO's `rl.reward_model` reads.

Policy-sample step labels are placed on the steps re-encoded one by one; with a byte-level or
whitespace-stable tokenizer these are the same tokens GRPO scores (steps.step_end_tokens).
"""
import dataclasses
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from dsmath_jax import atomic, config_types, paths, runtime, sharding
from dsmath_jax.model import llama, loading
from dsmath_jax.rl import reward_model as rm_lib
from dsmath_jax.rl import rewards as rewards_lib
from dsmath_jax.rl import steps as steps_lib
from dsmath_jax.rl.config import RUNTIME_KEYS
from dsmath_jax.rl.questions import encode_prompt, fit_questions, load_questions
from dsmath_jax.train.optim import OptimConfig

KINDS = ("outcome", "process")


# ---- Typed config -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LabelConfig:
  """Labelling the policy's own samples (config.label; data.source "policy")."""
  num_questions: int = 20000             # questions whose samples are labelled
  samples_per_question: int = 8          # policy samples per question
  max_new_tokens: int = 1024             # sample length (as GRPO's, §4.2: 1024)
  temperature: float = 1.0               # sampling temperature
  num_completions: int = 8               # Math-Shepherd N completions per step prefix (process, §4.1.3)
  step_delimiter: str = "\n"             # where a reasoning step ends (as GRPO's rl.step_delimiter)

  @classmethod
  def from_config(cls, section, where: str = "config.label") -> "LabelConfig":
    label = config_types.from_section(cls, section, where=where)
    config_types.require(label, where, positive=("num_questions", "samples_per_question", "max_new_tokens",
                                                 "temperature", "num_completions"))
    return label


@dataclasses.dataclass(frozen=True)
class RMDataConfig:
  """Where the reward model's labels come from and its batches (config.data)."""
  questions: str                         # "gsm8k:PATH,math:PATH,jsonl:PATH" for data.source "policy"
  kind: str = "outcome"                  # outcome (§4.1.2) | process (§4.1.3)
  source: str = "policy"                 # policy | prm800k:PATH | jsonl:PATH (module doc)
  template: str = "cot"                  # prompt template (templates.py), as the policy's
  seq_len: int = 2048                    # prompt + response tokens per row
  global_batch: int = 256                # rows per update

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"config.data.kind={self.kind!r}; choose one of {KINDS}")

  @classmethod
  def from_config(cls, section, where: str = "config.data") -> "RMDataConfig":
    data = config_types.from_section(cls, section, where=where)
    config_types.require(data, where, positive=("seq_len", "global_batch"))
    return data


@dataclasses.dataclass(frozen=True)
class RMTrainConfig:
  """How the reward model is trained: what train_reward_model reads (the task's and iterative RL's)."""
  seq_len: int                           # prompt + response tokens per row
  global_batch: int                      # rows per update
  num_microbatches: int                  # gradient accumulation slices (memory only)
  optim: OptimConfig                     # paper §4.1.2: lr 2e-5


@dataclasses.dataclass(frozen=True)
class RMUpdateConfig:
  """The update's memory and checkpoints (config.train of a reward_model run)."""
  num_microbatches: int = 32             # gradient accumulation slices of each update (memory only)
  checkpoint_every: int = 100            # steps between WORKDIR/checkpoints saves (re-running resumes)
  keep_checkpoints: int = 2              # checkpoints kept

  @classmethod
  def from_config(cls, section, where: str = "config.train") -> "RMUpdateConfig":
    train = config_types.from_section(cls, section, where=where)
    config_types.require(train, where, positive=("num_microbatches", "checkpoint_every", "keep_checkpoints"))
    return train


@dataclasses.dataclass(frozen=True)
class RewardModelConfig:
  """The typed config of a `reward_model` run (configs/reward_model.py)."""
  model: llama.LlamaConfig               # the decoder under the scalar head
  data: RMDataConfig
  label: LabelConfig
  optim: OptimConfig
  train: RMUpdateConfig
  seed: int = 0                          # initialization, labelling samples, batch order
  checkpoint: str = ""                   # paper: DeepSeekMath-Base 7B; also the labelling policy
  tokenizer: str = "byte"                # used when the checkpoint carries none

  @classmethod
  def from_config(cls, config) -> "RewardModelConfig":
    top = config_types.strict_fields(cls, config, where="config", ignore=RUNTIME_KEYS)
    runtime.MeshConfig.from_config(config.mesh)           # runtime.setup reads it; checked at the door too
    return cls(**dict(top, model=llama.LlamaConfig.from_config(config.model),
                      data=RMDataConfig.from_config(config.data), label=LabelConfig.from_config(config.label),
                      optim=OptimConfig.from_config(config.optim),
                      train=RMUpdateConfig.from_config(config.train)))

  def input_paths(self) -> list[tuple[str, str]]:
    """(config key, path) of every file the run reads (config_types.check_paths)."""
    source = [] if self.data.source == "policy" else config_types.spec_paths(self.data.source, "config.data.source")
    questions = config_types.spec_paths(self.data.questions, "config.data.questions") if not source else []
    return [("config.checkpoint", self.checkpoint), ("config.tokenizer", self.tokenizer)] + source + questions

  def training(self) -> RMTrainConfig:
    return RMTrainConfig(seq_len=self.data.seq_len, global_batch=self.data.global_batch,
                         num_microbatches=self.train.num_microbatches, optim=self.optim)


# ---- Labels -----------------------------------------------------------------------------------

def policy_examples(label_config: LabelConfig, kind: str, params, model_config, tokenizer, questions, rng, *,
                    mesh=None, rules=None, template: str = "cot"):
  """RMExamples from the policy's own samples: outcome (graded) or process (Math-Shepherd)."""
  from dsmath_jax.sample import sampler
  prompts = [encode_prompt(tokenizer, q["question"], template) for q in questions]
  sampling = sampler.SamplingParams(max_new_tokens=label_config.max_new_tokens,
                                    temperature=label_config.temperature,
                                    num_samples=label_config.samples_per_question)
  completions = sampler.generate(params, model_config, tokenizer, prompts, sampling,
                                 jax.random.fold_in(rng, 0), mesh=mesh, rules=rules)
  golds = [questions[c.prompt_index]["answer"] for c in completions]
  if kind == "outcome":
    graded = rewards_lib.score(rewards_lib.rule_reward, [c.text for c in completions], golds)
    return [rm_lib.outcome_example(c.prompt_ids, c.token_ids, value > 0.5)
            for c, value, ok in zip(completions, graded.values, graded.valid) if ok and c.token_ids]

  def complete(requests, n):
    continuation = dataclasses.replace(sampling, num_samples=n)
    ids = [completions[owner].prompt_ids + tokenizer.encode(prefix) for owner, prefix in requests]
    outs = sampler.generate(params, model_config, tokenizer, ids, continuation,
                            jax.random.fold_in(rng, 1), mesh=mesh, rules=rules)
    return [[o.text for o in outs[i * n:(i + 1) * n]] for i in range(len(requests))]

  delimiter = label_config.step_delimiter
  labels = rm_lib.math_shepherd_labels(
      [(c.text, g) for c, g in zip(completions, golds)], complete, rewards_lib.rule_reward,
      num_completions=label_config.num_completions, delimiter=delimiter)
  return [rm_lib.process_example(c.prompt_ids, [tokenizer.encode(s) for s in steps_lib.split_text(c.text, delimiter)],
                                 step_labels)
          for c, step_labels in zip(completions, labels) if step_labels]


def file_examples(source: str, kind: str, tokenizer, template: str = "cot"):
  """RMExamples from "prm800k:PATH" or "jsonl:PATH" (see module doc)."""
  prefix, _, path = source.partition(":")
  examples = []
  if prefix == "prm800k":
    for record in rm_lib.read_prm800k(path):
      prompt = encode_prompt(tokenizer, record["question"], template)
      steps = [(" " if i == 0 else "") + s + "\n" for i, s in enumerate(record["steps"])]
      examples.append(rm_lib.process_example(prompt, [tokenizer.encode(s) for s in steps], record["labels"]))
    return examples
  if prefix != "jsonl":
    raise ValueError(f"data.source={source!r}: use policy, prm800k:PATH or jsonl:PATH")
  from dsmath_jax.jsonl import json_objects
  for line_number, record in json_objects(path):
    needed = ("question", "response", "correct") if kind == "outcome" else ("question", "steps", "labels")
    for field in needed:
      if field not in record:
        raise ValueError(f"{path}:{line_number}: field {field!r} missing (data.kind={kind!r})")
    prompt = encode_prompt(tokenizer, record["question"], template)
    if kind == "outcome":
      examples.append(rm_lib.outcome_example(prompt, tokenizer.encode(record["response"]),
                                             bool(record["correct"])))
    else:
      if len(record["steps"]) != len(record["labels"]):
        raise ValueError(f"{path}:{line_number}: field 'labels' has {len(record['labels'])} entries "
                         f"for {len(record['steps'])} steps")
      examples.append(rm_lib.process_example(prompt, [tokenizer.encode(s) for s in record["steps"]],
                                             record["labels"]))
  return examples


# ---- Training ---------------------------------------------------------------------------------

def create_rm_state(optim_config: OptimConfig, seed: int, rm_config, mesh, rules, base_params=None, params=None):
  """(TrainState of the reward model, shardings) with a fresh optimizer. `base_params` = a policy
  decoder's params (head at zero); `params` = a whole trained reward model (load_reward_model)."""
  from dsmath_jax.train import optim
  from dsmath_jax.train.state import TrainState
  tx = optim.make_optimizer(optim_config)
  key = jax.random.key(seed)

  def boxed(key):
    params = rm_lib.init_params(rm_config, key)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                      rng=jax.random.key_data(key), tx=tx)

  shardings = sharding.tree_shardings(jax.eval_shape(boxed, key), mesh, rules)
  state = runtime.jit_under_mesh(lambda k: nn.unbox(boxed(k)), mesh, rules, out_shardings=shardings)(key)
  if base_params is not None:
    base = {k: v for k, v in base_params.items() if k in state.params["base"]}
    # A real copy (jnp.copy under jit), never an alias: the policy state may donate these buffers.
    base = runtime.jit_under_mesh(lambda b: jax.tree.map(jnp.copy, b), mesh, rules,
                                  out_shardings=shardings.params["base"])(base)
    state = state.replace(params={**state.params, "base": base})
  if params is not None:
    state = state.replace(params=jax.device_put(params, shardings.params))
  return state, shardings


def batch_orders(num_examples: int, batch_size: int, steps: int, seed: int):
  """The example indices of each of `steps` batches: epochs of a permutation drawn from `seed`, the
  last incomplete batch of an epoch dropped. A pure function, so a resumed run skips what was done."""
  order_rng = np.random.default_rng(seed)
  done = 0
  while done < steps:
    order = order_rng.permutation(num_examples)
    for start in range(0, len(order) - batch_size + 1, batch_size):
      yield order[start:start + batch_size]
      done += 1
      if done >= steps:
        return


def train_reward_model(training: RMTrainConfig, seed: int, state, shardings, rm_config, examples, mesh, rules,
                       writer=None, step_offset: int = 0, checkpointer=None):
  """Epochs over `examples` in batches of data.global_batch; returns (state, last metrics).

  With a `checkpointer` (train/checkpointing.py) the loop resumes from its latest checkpoint, saves on
  its interval, on the last step and on SIGTERM (then it stops early); the batches are a function of
  (seed, step), so the state is all a resume needs."""
  from dsmath_jax.train import optim
  from dsmath_jax.train import step as step_lib
  batch_size, seq_len = training.global_batch, training.seq_len
  if len(examples) < batch_size:
    raise ValueError(f"{len(examples)} reward-model examples, fewer than data.global_batch={batch_size}")
  model = rm_lib.RewardModel(rm_config)
  apply_fn = lambda params, tokens, **kw: model.apply({"params": params}, tokens, **kw)
  spec = {k: (batch_size, seq_len) for k in ("tokens", "segment_ids", "positions", "label_mask", "labels")}
  step = step_lib.compile_train_step(shardings, mesh, rules, spec, loss_fn=rm_lib.make_loss_fn(),
                                     apply_fn=apply_fn, num_microbatches=training.num_microbatches,
                                     learning_rate_fn=optim.make_schedule(training.optim))
  pad = 0
  metrics, start, saved = {}, 0, True
  if checkpointer is not None:
    state, start = checkpointer.restore(state)
  done = start
  for index, rows in enumerate(batch_orders(len(examples), batch_size, training.optim.steps, seed + step_offset)):
    if index < start:                    # done before the resume
      continue
    batch = rm_lib.make_batch([examples[i] for i in rows], seq_len, pad)
    state, metrics = step(state, sharding.put_global(batch, sharding.batch_sharding(mesh, rules, 2)))
    done = index + 1
    if writer is not None:
      writer.write(step_offset + done, {f"rm_{k}": v for k, v in jax.device_get(metrics).items()})
    if checkpointer is not None:
      saved = checkpointer.save(done, state)
      if checkpointer.should_stop(done):
        logging.warning("stopping at step %d (preemption); re-run the command to resume", done)
        break
  if checkpointer is not None and not saved:   # the last step (or the preempted one) is always saved
    checkpointer.save(done, state, force=True)
  return state, jax.device_get(metrics)


EXAMPLES_FILE = "examples.jsonl"        # WORKDIR/examples.jsonl: the labelled examples a run trains on


def write_examples(path: str, examples) -> None:
  """One RMExample per line, written whole or not at all (atomic.write_file; `path` may be a URL):
  a file that exists is whole."""
  with atomic.write_file(path) as f:
    for example in examples:
      f.write(json.dumps(dataclasses.asdict(example)) + "\n")


def read_examples(path: str) -> list:
  """The RMExamples of write_examples; a damaged line fails naming the file and line."""
  from dsmath_jax.jsonl import json_objects
  examples = []
  with paths.path(path).open(encoding="utf-8") as lines:
    for line_number, record in json_objects(path, lines):
      try:
        examples.append(rm_lib.RMExample(**record))
      except TypeError as error:
        raise ValueError(f"{path}:{line_number}: not a reward-model example ({error})") from error
  return examples


def policy_params(policy: loading.Pretrained, seed: int):
  """The policy's params, or a random init of its config (tiny runs without a checkpoint)."""
  if policy.params is not None:
    return policy.params
  return nn.unbox(llama.init_params(policy.config, jax.random.key(seed)))


def run(config, workdir: str):
  """Task `reward_model`: labels -> BCE training -> WORKDIR/model (save_reward_model); the
  resolved config in WORKDIR/config.json. Re-running the command resumes: the labels are read back
  from WORKDIR/examples.jsonl (written once, complete), the state from WORKDIR/checkpoints."""
  from dsmath_jax.train import checkpointing
  from dsmath_jax.train.metrics import MetricsWriter, plot_curves
  paths.check_orbax_dir(workdir, "--workdir")     # s3:// refused here, before any model is built
  rm_run = RewardModelConfig.from_config(config)
  config_types.check_paths(rm_run.input_paths())
  config_types.write_config(config, workdir)
  mesh, rules = runtime.setup(config)
  if rm_run.data.global_batch % rm_run.train.num_microbatches:
    raise ValueError(f"config.data.global_batch={rm_run.data.global_batch} does not split into "
                     f"config.train.num_microbatches={rm_run.train.num_microbatches}")
  sharding.check_batch_divides(rm_run.data.global_batch // rm_run.train.num_microbatches, mesh, rules,
                               what="config.data.global_batch / config.train.num_microbatches")
  policy = loading.load_or_init(rm_run.checkpoint, rm_run.model, tokenizer=rm_run.tokenizer, mesh=mesh,
                                rules=rules)
  model_config, tokenizer, data = policy.config, policy.tokenizer, rm_run.data
  params = policy.params
  if data.source == "policy":
    params = policy_params(policy, rm_run.seed)
  examples_path = paths.join(workdir, EXAMPLES_FILE)
  resumed = config_types.is_resumed(workdir) and paths.path(examples_path).is_file()
  if resumed:                                       # the labels of the first attempt
    examples = read_examples(examples_path)
  elif data.source == "policy":
    questions = fit_questions(load_questions(data.questions), tokenizer, data.template, data.seq_len // 2)
    questions = questions[:rm_run.label.num_questions]
    examples = policy_examples(rm_run.label, data.kind, params, model_config, tokenizer, questions,
                               jax.random.key(rm_run.seed), mesh=mesh, rules=rules, template=data.template)
  else:
    examples = file_examples(data.source, data.kind, tokenizer, data.template)
  if jax.process_index() == 0 and not resumed:
    write_examples(examples_path, examples)
  positive = np.mean([l for e in examples for l in e.labels]) if examples else float("nan")
  logging.info("reward model: %d %s examples, %.3f of labels positive", len(examples), data.kind, positive)
  state, shardings = create_rm_state(rm_run.optim, rm_run.seed, model_config, mesh, rules, base_params=params)
  writer = MetricsWriter(workdir, console_keys=("rm_loss", "rm_accuracy"))
  checkpointer = checkpointing.Checkpointer(
      paths.join(workdir, config_types.CHECKPOINTS_DIR),
      every_steps=rm_run.train.checkpoint_every, keep=rm_run.train.keep_checkpoints)
  try:
    state, metrics = train_reward_model(rm_run.training(), rm_run.seed, state, shardings, model_config, examples,
                                        mesh, rules, writer, checkpointer=checkpointer)
  finally:
    checkpointer.close()
  writer.close()
  if checkpointer.sigterm:
    return state, metrics
  plot_curves(paths.join(workdir, "metrics.jsonl"), ("rm_loss", "rm_accuracy"),
              paths.join(workdir, "curves.png"))
  rm_lib.save_reward_model(paths.join(workdir, "model"), model_config, state.params, tokenizer)
  return state, metrics
