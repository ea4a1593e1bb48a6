"""GRPO (paper §4.1-4.2), outcome supervision with the rule-based reward; the base every RL config forks.

  python -m dsmath_jax.main --config=configs/grpo.py:tiny --workdir=runs/grpo_tiny

`:tiny` (seconds on a CPU: random tiny model, byte tokenizer, 2 GSM8K questions x 4 samples)
checks the plumbing; the paper's run is configs/grpo_deepseekmath_rl.py. Writes
WORKDIR/metrics.jsonl (reward, grader accuracy, KL, clip fraction, entropy, length, time split),
WORKDIR/curves.png and WORKDIR/model (the next stage's `checkpoint`).

rl.aggregation (how per-token losses are averaged; see dsmath_jax/rl/loss.py):
  "sequence_mean"  paper eq. 3: mean over each output's tokens, then over outputs (default);
  "token_mean"     DAPO: one mean over every response token of the batch;
  "constant"       Dr. GRPO: each output's token sum / rl.loss_normalizer (0 = max_new_tokens);
                   with rl.scale_advantages=False (no division by the group's std) it is Dr. GRPO.
Methods of the same trainer: configs/online_rft.py, configs/rft.py, configs/dpo.py, configs/ppo.py.
"""

import ml_collections

from configs import common

DATA = common.SHARED_DATA


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = common.parse_arg(arg)
  c = ml_collections.ConfigDict()
  c.task = "grpo"
  c.seed = 0
  c.allow_config_change = False    # True: a resumed run may differ from WORKDIR/config.json (config_types.check_resume)
  # The policy: a load_pretrained path (paper: DeepSeekMath-Instruct 7B, WORKDIR/model of the
  # sft task); "" = random init of `model` (tiny runs only).
  c.checkpoint = ""
  c.tokenizer = "byte"                                    # used when the checkpoint carries none
  c.model = common.model("deepseek_math_7b")
  c.data = dict(
      # Paper §4.2: the chain-of-thought questions of GSM8K and MATH from the SFT data (~144K).
      questions=f"gsm8k:{DATA}/gsm8k/train.jsonl,math:{DATA}/math/train.jsonl",
      template="cot",                                     # "tool": tool-integrated RL (programs run
                                                          # in the sandbox, outputs carry no loss)
      questions_per_step=16)                              # x group_size = outputs per step
  c.rl = dict(
      group_size=64,                                      # G
      max_prompt_len=512,                                 # longer prompts are skipped (counted)
      max_new_tokens=1024,
      # Responses packed after one copy of their prompt per training row (dsmath_jax/rl/packing.py):
      # G computes each prompt once per group; dense attention grows with (prompt + k * max_new)^2,
      # so 1024-token responses keep 1 (one output per row).
      outputs_per_row=1,
      temperature=1.0, top_p=1.0, stop_strings=(),
      clip_eps=0.2,                                       # epsilon of eq. 3
      clip_eps_high=0.0,                                  # 0 = same as clip_eps; DAPO "clip-higher" 0.28
      kl_coef=0.04,                                       # beta
      aggregation="sequence_mean",
      loss_normalizer=0,                                  # "constant" mode; 0 = max_new_tokens
      adv_eps=1e-6,
      num_updates=1,                                      # mu: passes over the step's outputs
      num_minibatches=1,                                  # updates per pass
      reward="rule",                                      # "rule" | "outcome_rm" | "process_rm"
      reward_model="",                                    # WORKDIR/model of a reward_model run
      step_delimiter="\n",                                # process supervision step boundary
      logprob_gap_every=1,                                # steps between sampler/trainer log-prob checks
      # Variants (dsmath_jax/rl/config.py says what each does); these defaults are the paper's GRPO.
      scale_advantages=True,                              # False: Dr. GRPO (no division by the std)
      dual_clip=0.0,                                      # c > 1: dual-clip PPO; 0 = off
      ratio_level="token",                                # "sequence": GSPO
      tis_cap=0.0,                                        # truncated IS correction cap (e.g. 2.0); 0 = off
      temperature_logprobs=False,                         # log-probs of logits / temperature
      overlong_buffer=0, overlong_penalty=1.0,            # DAPO overlong shaping (e.g. buffer 256)
      reward_functions=("correct",), reward_weights=(1.0,),   # e.g. ("correct", "format"), (1.0, 0.1)
      dynamic_sampling="off",                             # "drop": zero-signal groups carry no loss;
                                                          # "resample": fresh questions until every group
                                                          # of the step has signal (DAPO)
      resample_rounds=4,                                  # "resample": extra sampling rounds per step at most
      gradient_coefficient="group",                       # "correct_only": RFT / Online RFT
      data_source="online",                               # "offline_samples": samples of the initial policy
      objective="clipped", dpo_beta=0.1,                  # "dpo": configs/dpo.py; "ppo": configs/ppo.py
      gae_gamma=1.0, gae_lambda=1.0,                      # PPO: GAE over the value model
      value_clip=0.2, value_lr=0.0,                       # PPO: value-loss clip, value lr (0 = optim.lr)
      whiten_advantages=False,                            # PPO: advantages to mean 0, std 1 over the batch
      iterations=0, steps_per_iteration=0)                # iterative RL (§4.1.4): configs/grpo_iterative.py
  # Tool-integrated RL (data.template "tool" only): programs per sample, sandbox processes.
  c.tool = dict(max_rounds=4, sandbox_workers=4)
  c.sandbox = dict(allow_unisolated=False)                # tool template: True runs programs even
                                                          # where no kernel isolation exists
  c.optim = dict(lr=1e-6, schedule="constant", steps=1000, warmup_steps=0, weight_decay=0.0,
                 clip_norm=1.0, b1=0.9, b2=0.95)
  # Checkpoints of the policy/optimizer state in WORKDIR/checkpoints; re-running resumes.
  c.train = dict(num_microbatches=16, checkpoint_every=50, keep_checkpoints=2,
                 wandb_project="",        # Weights & Biases project (pip install wandb); "" = off
                 profile_steps=0)         # > 0: WORKDIR/profile holds a jax.profiler trace of that many steps
  c.benchmark_eval = common.benchmark_eval()      # greedy GSM8K accuracy every N steps; 0 = off
  c.mesh = common.mesh()
  c.distributed = common.distributed()
  c.logical_axis_rules = common.LOGICAL_AXIS_RULES
  if args.variant == "tiny":
    c.model = common.model("tiny")
    c.data.update(questions=f"gsm8k:{common.ASSETS}/math_sample/gsm8k_test.jsonl", questions_per_step=2)
    c.rl.update(group_size=4, max_prompt_len=384, max_new_tokens=16, outputs_per_row=4)
    c.optim.update(lr=1e-4, steps=2)
    c.train.num_microbatches = 1
    c.benchmark_eval = common.benchmark_eval(**common.TINY_BENCHMARK_EVAL)
  return c
