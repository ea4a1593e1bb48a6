"""DAPO's dynamic sampling with resampling (Yu et al., 2025, §3.2; rl.dynamic_sampling="resample").

A group whose G rewards are all equal has advantage 0 on every output (eq. 4 of the paper): it adds
no gradient, only a smaller effective batch. Instead of training on fewer groups ("drop",
scoring.kept), "resample" samples the G outputs of fresh questions, round after round, until the step
holds `count` (= data.questions_per_step) groups with signal or `rl.resample_rounds` extra rounds are
spent. The step then trains on exactly `count` groups: those with signal first, in draw order; where
the rounds ran out, the earliest zero-signal groups fill the rest and carry no loss (scoring.kept).
So the packed update batch keeps its shape and the compiled train step is reused.

Each round samples a whole batch of questions (one compiled sampling program for every round; DAPO
over-samples whole batches too). The questions of round r of step s are a function of (seed, s, r)
(questions.fresh_questions), so a resumed run draws the same ones.
"""
from collections.abc import Callable

import numpy as np

from dsmath_jax.rl import rewards as rewards_lib
from dsmath_jax.rl import scoring


def select_groups(signal, count: int) -> np.ndarray:
  """Indices, in draw order, of the `count` groups a step trains on: the first `count` groups with
  signal, then (where fewer have one) the earliest groups without.  signal [groups] bool -> [count]."""
  signal = np.asarray(signal, bool)
  with_signal = np.flatnonzero(signal)[:count]
  filler = np.flatnonzero(~signal)[:count - len(with_signal)]
  return np.sort(np.concatenate([with_signal, filler]))


def resample(sample_round: Callable[[int], tuple[list, scoring.Scored]], count: int, max_rounds: int,
             group_size: int):
  """-> (completions, Scored, counts) of the `count` groups the step trains on.

  sample_round(r) -> (completions, Scored) of round r (prompt-major, `group_size` outputs per
  question); round 0 is the step's own batch, rounds 1..max_rounds draw fresh questions.
  counts: groups_sampled, groups_with_signal (over every round) and sampling_rounds."""
  rounds = [sample_round(0)]

  def groups_with_signal() -> int:
    return sum(int((~scored.zero_groups).sum()) for _, scored in rounds)

  while groups_with_signal() < count and len(rounds) <= max_rounds:
    rounds.append(sample_round(len(rounds)))
  completions, scored = concatenate(rounds, group_size)
  counts = {"groups_sampled": len(scored.zero_groups), "groups_with_signal": groups_with_signal(),
            "sampling_rounds": len(rounds)}
  completions, scored = take_groups(completions, scored, select_groups(~scored.zero_groups, count), group_size)
  return completions, scored, counts


def concatenate(rounds: list[tuple[list, scoring.Scored]], group_size: int) -> tuple[list, scoring.Scored]:
  """The rounds' outputs as one prompt-major list (prompt_index counting the groups of all rounds)
  and one Scored."""
  completions, groups = [], 0
  for round_completions, _ in rounds:
    completions += [c._replace(prompt_index=groups + c.prompt_index) for c in round_completions]
    groups += len(round_completions) // group_size
  parts = [scored for _, scored in rounds]
  return completions, scoring.Scored(
      token_advantages=[a for part in parts for a in part.token_advantages],
      rewards=_join([part.rewards for part in parts]),
      zero_groups=np.concatenate([part.zero_groups for part in parts]),
      correct=_join([part.correct for part in parts]),
      trained=np.concatenate([part.trained for part in parts]),
      reward_parts={name: _join([part.reward_parts[name] for part in parts]) for name in parts[0].reward_parts})


def take_groups(completions: list, scored: scoring.Scored, groups, group_size: int) -> tuple[list, scoring.Scored]:
  """The outputs of `groups` (indices into the prompt-major outputs' groups), prompt_index renumbered
  0, 1, ... in that order. Reward error messages are kept whole (each round logged its own)."""
  outputs = (np.asarray(groups)[:, None] * group_size + np.arange(group_size)).reshape(-1)   # [groups * G]
  take = lambda r: rewards_lib.Rewards(r.values[outputs], r.valid[outputs], r.errors)
  return ([completions[i]._replace(prompt_index=n // group_size) for n, i in enumerate(outputs)],
          scoring.Scored(token_advantages=[scored.token_advantages[i] for i in outputs], rewards=take(scored.rewards),
                         zero_groups=scored.zero_groups[np.asarray(groups)], correct=take(scored.correct),
                         trained=scored.trained[outputs],
                         reward_parts={name: take(part) for name, part in scored.reward_parts.items()}))


def _join(parts: list) -> rewards_lib.Rewards:
  return rewards_lib.Rewards(np.concatenate([p.values for p in parts]), np.concatenate([p.valid for p in parts]),
                             [e for p in parts for e in p.errors])
