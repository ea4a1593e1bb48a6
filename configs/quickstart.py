"""The DeepSeekMath recipe in miniature on a laptop CPU: corpus -> tokenizer -> pretrain -> SFT -> GRPO -> eval.

  python -m dsmath_jax.main --config=configs/quickstart.py --workdir=runs/quickstart
    about 8 minutes on 2 CPU cores (see the README for the measured time), from data shipped in the package:
    three corpus rounds over the sample web text (dsmath_jax/assets/corpus), a 1024-piece SentencePiece
    on corpus + word-problem text, a ~3M-parameter model pretrained on corpus + word-problem text,
    SFT on an imperfect teacher's worked solutions, GRPO with the grader's reward, greedy accuracy on
    200 held-out problems (templates and numbers no training problem uses) before and after GRPO.
    Prints the table (also WORKDIR/summary.md and summary.json, with wall and CPU seconds per stage);
    every stage writes WORKDIR/<stage>.
  python -m dsmath_jax.main --config=configs/quickstart.py:tiny --workdir=/tmp/qs_tiny   (CI: ~1-2 minutes)

Each stage's config is the stage's own config file, nested and shrunk here, so any field can be
overridden: `--config.sft.optim.steps=300`, `--config.grpo.rl.kl_coef=0.0`. Paths may name
"{workdir}" (the quickstart's WORKDIR); each stage's `checkpoint` is the previous stage's
WORKDIR/<stage>/model. A stage whose outputs exist is skipped on re-run (delete WORKDIR/<stage>
to redo it and the stages after it).

The problems are one-step word problems (dsmath_jax/data/word_problems.py, family "one_step"):
"Li has 13 cards. Then Li loses 4. How many cards does Li have now?" -> " 13 - 4 = 12 - 3 = 11 - 2
= 10 - 1 = 9.\nThe answer is \\boxed{9}." The worked solutions count one unit per equation (the
"counting" format): a ~3M-parameter model trained for minutes does not learn the addition table
(with " 13 - 4 = 9." it got most sums wrong), but it does learn this local rule, and so reaches
sums of numbers it never saw together. Half of the SFT solutions (the teacher's slips) apply the
wrong operation, so the SFT model picks the operation a verb asks for only some of the time;
GRPO, rewarded by the grader against the true answers, learns which one each verb asks for, and
this carries over to held-out problems that pair the verbs with other openers and other numbers.

The settings (format, number ranges, pretraining mix and steps, SFT steps, GRPO lr and steps) were
chosen on a validation split of the RL problems with experiments/quickstart_validation.py, never
on the held-out test problems.
"""
import ml_collections

from configs import common
from configs import corpus as corpus_config
from configs import eval as eval_config
from configs import grpo as grpo_config
from configs import pretrain as pretrain_config
from configs import sft as sft_config
from configs import tokenizer as tokenizer_config

# Stages in order; `stages` in the config may drop trailing ones (e.g. to stop after SFT).
STAGES = ("problems", "corpus", "tokenizer", "pretrain", "sft", "eval_sft", "grpo", "eval_grpo")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = common.parse_arg(arg, variant="default")            # "default" | "tiny"
  tiny = args.variant == "tiny"
  c = ml_collections.ConfigDict()
  c.task = "quickstart"
  c.stages = STAGES
  # Generated word problems (dsmath_jax/data/word_problems.py, one-step family), written to
  # WORKDIR/problems/{sft,rl,test}.jsonl: test problems use 8 templates and 25% of the number pairs
  # that no sft/rl problem uses. The SFT solutions come from an imperfect teacher: half of them
  # apply the wrong operation (+ for -, - for +), so the SFT model often, not always, picks the
  # right one, and GRPO's grader reward can find it among the samples. Solutions count one unit per
  # equation (" 13 - 4 = 12 - 3 = 11 - 2 = 10 - 1 = 9."), so at most 6 links (responses <= 57 tokens).
  c.problems = dict(seed=0, sft=4000, rl=1000, test=200, family="one_step", teacher_error=0.5, max_factor=5,
                    max_start=25, max_addend=6, test_number_fraction=0.25, solution_format="counting")

  # §2.1: fastText rounds over the shipped Common Crawl sample (3 rounds, 2 review files).
  c.corpus = corpus_config.get_config("tiny")

  # §2.3 (DeepSeek tokenizer: BPE, split digits, byte fallback) with 1024 pieces (256 are bytes),
  # on the collected corpus (exported by the quickstart) + the SFT problems' text and prompts.
  c.tokenizer = tokenizer_config.get_config("tiny,vocab_size=1024")
  c.tokenizer.output = "{workdir}/tokenizer"
  c.tokenizer.character_coverage = 0.995     # the multilingual sample's rare characters fall back to bytes
  c.tokenizer.data.update(files=("{workdir}/tokenizer/corpus_text.jsonl", "{workdir}/problems/sft.jsonl"),
                          text_fields=("text", "prompt"), generated_size=0)

  # §2.3: pretrain on a mixture; here 20% DeepSeekMath-corpus pages, 80% word-problem text (SFT split).
  c.pretrain = pretrain_config.get_config("small")
  c.pretrain.model = common.model("small", vocab_size=1024)    # ~3.3M parameters
  c.pretrain.data.tokenizer = "{workdir}/tokenizer/tokenizer.model"
  c.pretrain.data.sources = dict(
      math=dict(tfds="dsmath_corpus", split="train", data_dir="{workdir}/corpus/tfds", weight=0.2),
      arithmetic=dict(jsonl="{workdir}/problems/sft.jsonl", weight=0.8))
  c.pretrain.data.update(seq_len=128, global_batch=16, worker_count=0)     # tokenize in the loop: 2 cores
  c.pretrain.optim.update(lr=3e-3, steps=250, warmup_steps=10)
  c.pretrain.train.update(log_every=10, checkpoint_every=250)
  c.pretrain.eval = dict(every_steps=25, num_batches=2, sources=dict(
      held_out=dict(jsonl="{workdir}/problems/test.jsonl")))

  # §3.1: SFT on prompt/response pairs (CoT template), loss on responses only.
  c.sft = sft_config.get_config("tiny")
  c.sft.checkpoint = "{workdir}/pretrain/model"
  c.sft.model = common.model("small", vocab_size=1024)   # the checkpoint's shape; its run-time fields apply
  c.sft.data.update(tokenizer="", seq_len=128, global_batch=16, worker_count=0)
  c.sft.data.sources = dict(sft=dict(jsonl="{workdir}/problems/sft.jsonl"))
  c.sft.optim.update(lr=1e-3, steps=300, schedule="cosine", warmup_steps=10)
  c.sft.train.update(log_every=10, checkpoint_every=150)
  c.sft.eval = dict(every_steps=50, num_batches=2, sources=dict(
      held_out=dict(jsonl="{workdir}/problems/test.jsonl")))

  # §4.1: GRPO with the rule-based reward (the grader), outcome supervision, k3 KL to the SFT model.
  c.grpo = grpo_config.get_config("tiny")
  c.grpo.checkpoint = "{workdir}/sft/model"
  c.grpo.model = common.model("small", vocab_size=1024)
  c.grpo.data.update(questions="jsonl:{workdir}/problems/rl.jsonl", questions_per_step=8)
  c.grpo.rl.update(group_size=8, max_prompt_len=96, max_new_tokens=64, logprob_gap_every=10, outputs_per_row=8)
  c.grpo.optim.update(lr=1e-4, steps=60)

  # §3.2: greedy accuracy of the SFT and the GRPO model on the held-out problems.
  c.eval_sft = eval_config.get_config("{workdir}/problems/test.jsonl")
  c.eval_sft.checkpoint = "{workdir}/sft/model"
  c.eval_sft.data.name = "arithmetic"
  c.eval_sft.sampling.update(max_new_tokens=64, batch_size=100)
  c.eval_sft.grader.workers = 1
  c.eval_grpo = c.eval_sft.copy_and_resolve_references()
  c.eval_grpo.checkpoint = "{workdir}/grpo/model"

  if tiny:                                                  # every stage for a few steps: CI
    c.problems.update(sft=400, rl=64, test=16)
    c.tokenizer.vocab_size = 512
    for stage in (c.pretrain, c.sft, c.grpo):
      stage.model = common.model("tiny", vocab_size=512)
    for stage in (c.pretrain, c.sft):
      stage.data.update(seq_len=64, global_batch=8)
      stage.optim.update(steps=6, warmup_steps=1)
      stage.train.update(log_every=2, checkpoint_every=6)
      stage.eval.update(every_steps=3, num_batches=1)
    c.pretrain.optim.lr = 1e-2
    c.grpo.data.questions_per_step = 2
    c.grpo.rl.update(group_size=4, max_new_tokens=8, logprob_gap_every=1, outputs_per_row=4)
    c.grpo.optim.steps = 2
    for stage in (c.eval_sft, c.eval_grpo):
      stage.sampling.max_new_tokens = 8
  return c
