"""The typed config of a GRPO run: `config.rl`, `config.data`, `config.train`, `config.sandbox` (and
`config.model`, `config.optim`, `config.tool` through their owners' dataclasses) as frozen values,
built once at the task's door (grpo.run, iterative.run) by `from_config`, which refuses unknown,
misspelt and missing keys naming them. Everything below takes these values.

Defaults are the paper's DeepSeekMath-RL run (§4.2) and match configs/grpo.py, which stays the
full description of a run: G = 64 outputs per question, beta = 0.04, lr 1e-6, max length 1024,
training batch 1024 (16 questions x 64 outputs), one policy update per exploration stage.
"""
import dataclasses

from dsmath_jax import config_types, runtime
from dsmath_jax.model import llama
from dsmath_jax.sample import sampler
from dsmath_jax.sample import tool_loop
from dsmath_jax.train.benchmark_eval import BenchmarkEvalConfig
from dsmath_jax.train.optim import OptimConfig

REWARDS = ("rule", "outcome_rm", "process_rm")
AGGREGATIONS = ("sequence_mean", "token_mean", "constant")
RATIO_LEVELS = ("token", "sequence")
DYNAMIC_SAMPLING = ("off", "drop", "resample")
GRADIENT_COEFFICIENTS = ("group", "correct_only")
DATA_SOURCES = ("online", "offline_samples")
OBJECTIVES = ("clipped", "dpo", "ppo")


@dataclasses.dataclass(frozen=True)
class RLConfig:
  """GRPO's knobs (config.rl), paper §4.1 (Algorithm 1) and §4.2."""
  group_size: int = 64                   # G outputs sampled per question (§4.2: 64)
  max_prompt_len: int = 512              # longer prompts are skipped (and counted)
  max_new_tokens: int = 1024             # response budget (§4.2: max length 1024)
  outputs_per_row: int = 1               # responses after one prompt copy per training row (packing.py)
  temperature: float = 1.0               # sampling temperature of the G outputs
  top_p: float = 1.0                     # nucleus sampling; 1 = off
  stop_strings: tuple[str, ...] = ()     # strings that end a response besides EOS
  clip_eps: float = 0.2                  # epsilon of the clipped ratio (eq. 3)
  clip_eps_high: float = 0.0             # upper clip; 0 = clip_eps (DAPO "clip-higher": 0.28)
  kl_coef: float = 0.04                  # beta of the KL penalty (eq. 3-4; §4.2: 0.04); 0 = no reference
  aggregation: str = "sequence_mean"     # sequence_mean (eq. 3) | token_mean (DAPO) | constant (Dr. GRPO)
  loss_normalizer: int = 0               # "constant" aggregation's divisor; 0 = max_new_tokens
  adv_eps: float = 1e-6                  # added to the group's reward std (eq. 4 normalization)
  num_updates: int = 1                   # mu passes over a step's outputs (§4.2: a single update)
  num_minibatches: int = 1               # policy updates per pass
  reward: str = "rule"                   # rule (the grader) | outcome_rm (§4.1.2) | process_rm (§4.1.3)
  reward_model: str = ""                 # WORKDIR/model of a `reward_model` run (outcome_rm, process_rm)
  step_delimiter: str = "\n"             # process supervision: where a reasoning step ends (§4.1.3)
  logprob_gap_every: int = 1             # steps between sampler/trainer log-prob checks; 0 = never
  # Variants (issue 18), each one line in a config; the defaults are the paper's GRPO.
  scale_advantages: bool = True          # divide by the group's reward std (eq. 4); False: Dr. GRPO
  dual_clip: float = 0.0                 # dual-clip c > 1 (Ye et al., 2020): a negative-advantage
                                         # token's loss is at most c |A|; 0 = off
  ratio_level: str = "token"             # token (eq. 3) | sequence (GSPO: one length-normalized ratio per output)
  tis_cap: float = 0.0                   # truncated importance sampling min(pi_old/pi_sampler, C); 0 = off
  temperature_logprobs: bool = False     # trainer log-probs of logits / temperature (the sampled
                                         # distribution); False: of the raw logits (exact at temperature 1)
  overlong_buffer: int = 0               # DAPO overlong shaping: the budget's last tokens cost up to
  overlong_penalty: float = 1.0          #   overlong_penalty (reached at max_new_tokens); 0 = off
  reward_functions: tuple[str, ...] = ("correct",)   # reward "rule": the functions summed (rewards.named_reward)
  reward_weights: tuple[float, ...] = (1.0,)         # their weights; each one's mean is logged (reward_NAME)
  dynamic_sampling: str = "off"          # off | drop (DAPO: groups with all rewards equal carry no loss)
                                         # | resample (DAPO: sample fresh questions until the step holds
                                         # data.questions_per_step groups with signal; rl/dynamic_sampling.py)
  resample_rounds: int = 4               # "resample": extra sampling rounds per step at most (each one a
                                         # batch of fresh questions); zero-signal groups fill what is missing
  gradient_coefficient: str = "group"    # group (GRPO, §4.1.2) | correct_only (RFT, Online RFT §5.2.1: 1 if correct)
  data_source: str = "online"            # online (policy samples) | offline_samples (of the fixed initial
                                         # policy: RFT, §5.2.1)
  objective: str = "clipped"             # clipped (eq. 3: GRPO, RFT) | dpo (pairs of graded samples, rl/dpo.py)
                                         # | ppo (value model + GAE, rl/ppo.py)
  dpo_beta: float = 0.1                  # DPO's beta (objective "dpo")
  # PPO (objective "ppo", rl/ppo.py): kl_coef is eq. 1's beta, in the per-token reward, not the loss.
  gae_gamma: float = 1.0                 # GAE discount (paper §5.2.1 / InstructGPT: 1)
  gae_lambda: float = 1.0                # GAE lambda (1: A_t = return - V_t)
  value_clip: float = 0.2                # clip range of the value loss around the rollout's values
  value_lr: float = 0.0                  # the value model's AdamW learning rate; 0 = optim.lr
  whiten_advantages: bool = False        # GAE advantages to mean 0, std 1 over the batch's loss tokens
                                         # (returns stay unwhitened); False: as GAE gives them
  iterations: int = 0                    # iterative RL (§4.1.4, Algorithm 1): I iterations; 0 = plain GRPO
  steps_per_iteration: int = 0           # M GRPO steps per iteration (iterative RL only)

  def __post_init__(self):
    if self.reward not in REWARDS:
      raise ValueError(f"config.rl.reward={self.reward!r}; choose one of {REWARDS}")
    if self.aggregation not in AGGREGATIONS:
      raise ValueError(f"config.rl.aggregation={self.aggregation!r}; choose one of {AGGREGATIONS}")
    for name, value, choices in (("ratio_level", self.ratio_level, RATIO_LEVELS),
                                 ("dynamic_sampling", self.dynamic_sampling, DYNAMIC_SAMPLING),
                                 ("gradient_coefficient", self.gradient_coefficient, GRADIENT_COEFFICIENTS),
                                 ("data_source", self.data_source, DATA_SOURCES),
                                 ("objective", self.objective, OBJECTIVES)):
      if value not in choices:
        raise ValueError(f"config.rl.{name}={value!r}; choose one of {choices}")
    if len(self.reward_functions) != len(self.reward_weights) or not self.reward_functions:
      raise ValueError(f"config.rl.reward_functions={self.reward_functions} and config.rl.reward_weights="
                       f"{self.reward_weights} must be non-empty and of one length")
    if self.dual_clip and self.dual_clip <= 1.0:
      raise ValueError(f"config.rl.dual_clip={self.dual_clip} must be > 1 (or 0 = off)")
    if self.tis_cap and self.temperature_logprobs and self.temperature != 1.0:
      raise ValueError("config.rl.tis_cap with config.rl.temperature_logprobs at temperature != 1: the "
                       "sampler's log-probs are of the raw logits, so they cannot be compared")
    if self.objective == "dpo" and (self.outputs_per_row != 2 or self.group_size % 2):
      raise ValueError(f"config.rl.objective='dpo' trains on (chosen, rejected) rows: config.rl.outputs_per_row "
                       f"must be 2 (is {self.outputs_per_row}) and config.rl.group_size even (is {self.group_size})")
    if self.objective == "ppo" and (self.reward == "process_rm" or self.iterations):
      raise ValueError("config.rl.objective='ppo' takes an outcome reward (rl.reward 'rule' or 'outcome_rm') "
                       "and no iterative RL (rl.iterations=0)")
    if self.whiten_advantages and self.objective != "ppo":
      raise ValueError(f"config.rl.whiten_advantages whitens GAE advantages: it needs config.rl.objective='ppo' "
                       f"(is {self.objective!r})")
    if not (0.0 <= self.gae_gamma <= 1.0 and 0.0 <= self.gae_lambda <= 1.0):
      raise ValueError(f"config.rl.gae_gamma={self.gae_gamma} and config.rl.gae_lambda={self.gae_lambda} "
                       "must be in [0, 1]")
    if self.dynamic_sampling == "resample" and self.resample_rounds < 1:
      raise ValueError(f"config.rl.resample_rounds={self.resample_rounds} must be >= 1 with "
                       "config.rl.dynamic_sampling='resample' (0 extra rounds is 'drop')")
    if self.outputs_per_row < 1 or self.group_size % self.outputs_per_row:
      raise ValueError(f"config.rl.outputs_per_row={self.outputs_per_row} must divide "
                       f"config.rl.group_size={self.group_size}")

  @classmethod
  def from_config(cls, section, where: str = "config.rl") -> "RLConfig":
    rl = config_types.from_section(cls, section, where=where)
    config_types.require(rl, where, positive=("group_size", "max_prompt_len", "max_new_tokens", "num_updates",
                                              "num_minibatches", "temperature", "top_p"),
                         non_negative=("clip_eps", "kl_coef", "iterations", "steps_per_iteration", "tis_cap",
                                       "overlong_buffer", "logprob_gap_every", "value_clip", "value_lr",
                                       "resample_rounds"))
    return rl

  @property
  def recompute_old_logprobs(self) -> bool:
    """pi_old comes from the trainer's pass over the samples, not the sampler: for the IS correction,
    for temperature-consistent log-probs, and for offline samples (whose sampler is not the policy)."""
    return bool(self.tis_cap) or self.temperature_logprobs or self.data_source != "online"

  @property
  def needs_reference(self) -> bool:
    """A frozen copy of the starting policy: pi_ref of the KL term or of DPO, the sampler of offline samples."""
    return self.kl_coef > 0 or self.objective == "dpo" or self.data_source == "offline_samples"

  @property
  def logprob_temperature(self) -> float:
    """What the trainer divides the logits by before log_softmax."""
    return self.temperature if self.temperature_logprobs else 1.0

  def sampling(self) -> sampler.SamplingParams:
    """How the G outputs of a question are sampled (one SamplingParams for the whole run)."""
    return sampler.SamplingParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                                  top_p=self.top_p, num_samples=self.group_size,
                                  stop_strings=self.stop_strings)


@dataclasses.dataclass(frozen=True)
class QuestionsConfig:
  """The questions and their prompts (config.data of a GRPO run)."""
  questions: str                         # "gsm8k:PATH,math:PATH,jsonl:PATH" (questions.load_questions)
  template: str = "cot"                  # prompt template; "tool": tool-integrated RL (the `tool` section);
                                         # "chat": the checkpoint's chat template (rl/questions.py)
  questions_per_step: int = 16           # x group_size = outputs per step (§4.2: batch 1024 = 16 x 64)

  @classmethod
  def from_config(cls, section, where: str = "config.data") -> "QuestionsConfig":
    data = config_types.from_section(cls, section, where=where)
    config_types.require(data, where, positive=("questions_per_step",))
    return data


@dataclasses.dataclass(frozen=True)
class GRPOTrainConfig:
  """The policy update's memory and its checkpoints (config.train of a GRPO run)."""
  num_microbatches: int = 16             # gradient accumulation slices of each update (memory only)
  checkpoint_every: int = 50             # steps between WORKDIR/checkpoints saves (re-running resumes)
  keep_checkpoints: int = 2              # checkpoints kept
  wandb_project: str = ""                # Weights & Biases project beside TensorBoard; "" = off
  profile_steps: int = 0                 # jax.profiler trace of this many steps after the first (compiling) one

  @classmethod
  def from_config(cls, section, where: str = "config.train") -> "GRPOTrainConfig":
    train = config_types.from_section(cls, section, where=where)
    config_types.require(train, where, positive=("num_microbatches", "checkpoint_every", "keep_checkpoints"),
                         non_negative=("profile_steps",))
    return train


# Top-level keys a task reads outside its typed sections: main (task), runtime.setup (mesh, rules,
# distributed), config_types.write_config (allow_config_change).
RUNTIME_KEYS = ("task", "mesh", "logical_axis_rules", "distributed", config_types.ALLOW_CHANGE_KEY)


@dataclasses.dataclass(frozen=True)
class GRPOConfig:
  """The typed config of a `grpo` run (configs/grpo.py): what setup, the loop and the step read."""
  model: llama.LlamaConfig               # the policy (run-time fields apply to a loaded checkpoint)
  data: QuestionsConfig
  rl: RLConfig
  tool: tool_loop.ToolConfig             # read when data.template == "tool"
  sandbox: tool_loop.SandboxConfig       # read when data.template == "tool"
  optim: OptimConfig                     # AdamW (train/optim.py); §4.2: lr 1e-6
  train: GRPOTrainConfig
  seed: int = 0                          # initialization, question order and sampling keys
  checkpoint: str = ""                   # the policy to start from (paper: DeepSeekMath-Instruct 7B); "" = init
  tokenizer: str = "byte"                # used when the checkpoint carries none
  benchmark_eval: BenchmarkEvalConfig = BenchmarkEvalConfig()   # held-out benchmark accuracy every N steps

  @classmethod
  def from_config(cls, config, ignore: tuple[str, ...] = ()) -> "GRPOConfig":
    """`ignore`: top-level sections another reader owns (iterative RL's `rm`, an experiment's own)."""
    top = config_types.strict_fields(cls, config, where="config", ignore=RUNTIME_KEYS + ignore)
    runtime.MeshConfig.from_config(config.mesh)           # runtime.setup reads it; checked at the door too
    return cls(**dict(
        top, model=llama.LlamaConfig.from_config(config.model), data=QuestionsConfig.from_config(config.data),
        rl=RLConfig.from_config(config.rl), tool=tool_loop.ToolConfig.from_config(config.tool),
        sandbox=tool_loop.SandboxConfig.from_config(config.sandbox),
        optim=OptimConfig.from_config(config.optim), train=GRPOTrainConfig.from_config(config.train),
        benchmark_eval=BenchmarkEvalConfig.from_config(config.get("benchmark_eval"))))

  def input_paths(self) -> list[tuple[str, str]]:
    """(config key, path) of every file the run reads (config_types.check_paths)."""
    return ([("config.checkpoint", self.checkpoint), ("config.tokenizer", self.tokenizer),
             ("config.rl.reward_model", self.rl.reward_model)]
            + config_types.spec_paths(self.data.questions, "config.data.questions")
            + self.benchmark_eval.input_paths())

  @property
  def tool_integrated(self) -> bool:
    """The one switch for tool-integrated sampling: the prompt template (paper §3.1, ToRA format)."""
    return self.data.template == "tool"
