"""Sample completions from any checkpoint (paper §3.2/§4: the generations eval and GRPO score).

  python -m dsmath_jax.main --config=configs/sample.py --config.checkpoint=runs/sft/model \
      --config.prompts=questions.jsonl --config.num_samples=4 --config.temperature=0.7 \
      --config.max_new_tokens=512 --config.template=tool --workdir=runs/sample
  python -m dsmath_jax.main --config=configs/sample.py:tiny --workdir=/tmp/sample_tiny   (seconds)

`checkpoint` is a save_pretrained dir, a Hugging Face dir or a GGUF file; "" = random init of
`model`. Each line of `prompts` has a `prompt` (raw text), a `question` (rendered with
`template`: "cot" or "tool", templates.py) or `prompt_ids` (token ids, for a checkpoint without
a tokenizer). Writes WORKDIR/samples.jsonl (prompt, completion, token ids, log-probs, tool mask,
finish reason per sample) and WORKDIR/sample_summary.json (tokens/s, finish reasons).
`template="tool"` (the one switch, as in grpo and eval) runs the tool-integrated loop: programs
executed in the sandbox, ``` output blocks appended, at most `tool.max_rounds` per sample.
Top-level keys are SampleConfig (sample/task.py) and SamplingParams (sample/sampler.py) fields.
"""
import ml_collections

from configs import common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = common.parse_arg(arg)
  c = ml_collections.ConfigDict()
  c.task = "sample"
  c.seed = 0
  c.checkpoint = ""                       # load_pretrained path; "" = random init of `model`
  c.tokenizer = "byte"                    # used when the checkpoint carries none (path or "byte")
  c.model = common.model("deepseek_math_7b")
  c.prompts = ""                          # JSONL; "" = the `questions` below
  c.questions = ()                        # inline questions (rendered with `template`)
  c.template = "cot"                      # for `question` records: cot | tool | program; "tool" also
                                          # runs the tool-integrated loop (ToRA protocol, §3.1)
  c.add_bos = True                        # prepend the tokenizer's BOS to text prompts
  c.limit = 0                             # first N prompts (0 = all)
  # Sampling (paper §4.2 GRPO: 64 samples per question at temperature 1.0 is the RL setting;
  # eval §2.2: greedy, or T=0.7 for maj@k).
  c.num_samples = 1
  c.temperature = 1.0
  c.top_p = 1.0
  c.top_k = 0                             # 0 = no top-k
  c.greedy = False                        # argmax; ignores temperature/top_p/top_k
  c.max_new_tokens = 512
  c.stop_strings = ()
  c.tool = dict(max_rounds=4,             # template "tool" only (tool_loop.ToolConfig)
                sandbox_workers=4)
  c.sandbox = dict(allow_unisolated=False)  # True: run programs even where no kernel isolation exists
  c.batch_size = 64                       # rows (prompt x sample) per sampler call
  c.mesh = common.mesh()
  c.distributed = common.distributed()
  c.logical_axis_rules = common.LOGICAL_AXIS_RULES
  if args.variant == "tiny":              # seconds on one CPU: random tiny model, byte tokenizer
    c.model = common.model("tiny")
    c.questions = ("What is 2 + 3?", "Compute 7 * 6.", "Is 17 prime?")
    c.num_samples = 2
    c.max_new_tokens = 16
    c.batch_size = 8
  return c
