"""The typed `config.experiment` section of this experiment (and the GRPO run it wraps): the
scripts' door. Unknown, misspelt and missing keys fail here, naming config.experiment.<key>;
everything below takes these values, never the ConfigDict."""
import dataclasses

from dsmath_jax import config_types
from dsmath_jax.rl import iterative
from dsmath_jax.rl.config import GRPOConfig, RLConfig
from dsmath_jax.train.optim import OptimConfig


@dataclasses.dataclass(frozen=True)
class TaskConfig:
  """The generated problems (dsmath_jax/data/word_problems.py), config.experiment.task."""
  num_train: int                 # first half: SFT records; second half: RL questions
  num_test: int                  # held-out problems (templates and numbers no training problem uses)
  seed: int                      # generator seed
  family: str                    # "two_step" | "one_step"
  teacher_error: float           # share of SFT solutions with the wrong last operation
  max_factor: int                # bound of the multiplied numbers
  max_addend: int                # bound of the added / removed numbers
  test_number_fraction: float    # share of the number tuples kept for held-out problems only


@dataclasses.dataclass(frozen=True)
class SFTConfig:
  """The one SFT model every RL seed starts from (config.experiment.sft)."""
  steps: int                     # updates (cosine schedule, 10 warmup steps)
  lr: float                      # peak learning rate
  batch: int                     # records per update
  seed: int                      # initialization and batch order
  model: str                     # a WORKDIR/sft/model to reuse instead of training one ("" = train)


@dataclasses.dataclass(frozen=True)
class MajPassConfig:
  """maj_pass.py (paper Figure 7), config.experiment.maj_pass."""
  k: int                         # samples per question: maj@j / pass@j for j = 1, 2, 4, ..., k
  questions: int                 # held-out problems sampled


@dataclasses.dataclass(frozen=True)
class ArmConfig:
  """One method of figure5.py (config.experiment.arms.<name>): the keys of config.rl and
  config.optim it changes, applied on top of the experiment's GRPO run (`arm_run`)."""
  rl: dict                       # e.g. {"objective": "dpo", "dpo_beta": 0.1, "kl_coef": 0.0}
  optim: dict                    # e.g. {"lr": 5e-5}

  @classmethod
  def from_config(cls, section, where: str) -> "ArmConfig":
    """Its keys are checked against RLConfig and OptimConfig by `arm_run` (`typed` runs it for every arm)."""
    return config_types.from_section(cls, section, where=where)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  task: TaskConfig
  sft: SFTConfig
  maj_pass: MajPassConfig
  rl_seeds: tuple[int, ...]      # GRPO runs from the one SFT model (question order, sampling keys)
  rl_steps: int                  # GRPO steps per seed (a step budget: the result does not depend on load)
  eval_every: int                # held-out greedy accuracy every this many steps
  eval_k: int                    # maj@j / pass@j for j = 1, 2, 4, ..., eval_k before and after
  eval_questions: int            # held-out problems evaluated
  rm: iterative.IterativeRMConfig | None = None   # section5.py: the reward models' training
  arms: dict[str, ArmConfig] | None = None         # figure5.py: {method name: its rl / optim changes}

  @classmethod
  def from_config(cls, section, where: str = "config.experiment") -> "ExperimentConfig":
    nested = {"task": TaskConfig, "sft": SFTConfig, "maj_pass": MajPassConfig}
    top = config_types.strict_fields(cls, section, where=where, ignore=tuple(nested) + ("rm", "arms"))
    parts = {name: config_types.from_section(kind, section[name], where=f"{where}.{name}")
             for name, kind in nested.items() if name in section}
    if "rm" in section:
      parts["rm"] = iterative.IterativeRMConfig.from_config(section.rm, where=f"{where}.rm")
    if "arms" in section:                            # arm names are the user's: an open map
      parts["arms"] = {name: ArmConfig.from_config(arm, where=f"{where}.arms.{name}")
                       for name, arm in section.arms.items()}
    missing = sorted(set(nested) - set(parts))
    if missing:
      raise ValueError(f"missing config section(s) {', '.join(f'{where}.{m}' for m in missing)}")
    return cls(**dict(top, rl_seeds=tuple(int(s) for s in top["rl_seeds"]), **parts))


def typed(config) -> tuple[GRPOConfig, ExperimentConfig]:
  """The door of run.py, section5.py, figure5.py and maj_pass.py: (the GRPO run, the experiment).
  Every arm of experiment.arms is resolved once here, so a misspelt or bad key fails at the door."""
  run = GRPOConfig.from_config(config, ignore=("experiment",))
  experiment = ExperimentConfig.from_config(config.experiment)
  for name, arm in (experiment.arms or {}).items():
    arm_run(run, arm, where=f"config.experiment.arms.{name}")
  return run, experiment


def arm_run(run: GRPOConfig, arm: ArmConfig, where: str) -> GRPOConfig:
  """`run` with the arm's config.rl and config.optim keys replaced, through the sections' doors
  (a bad value fails here, naming `where`, before any model is built)."""
  rl = RLConfig.from_config({**dataclasses.asdict(run.rl), **arm.rl}, where=f"{where}.rl")
  optim = OptimConfig.from_config({**dataclasses.asdict(run.optim), **arm.optim}, where=f"{where}.optim")
  return dataclasses.replace(run, rl=rl, optim=optim)


def pointed_at(run: GRPOConfig, experiment: ExperimentConfig, model_dir: str, questions_path: str) -> GRPOConfig:
  """The GRPO run started from the shared SFT model on the task's RL questions, for rl_steps steps."""
  return dataclasses.replace(run, checkpoint=model_dir,
                             data=dataclasses.replace(run.data, questions=f"jsonl:{questions_path}"),
                             optim=dataclasses.replace(run.optim, steps=experiment.rl_steps))
