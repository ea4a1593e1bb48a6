"""SentencePiece BPE for from-scratch runs: byte fallback, split digits, text kept verbatim.

  python -m dsmath_jax.main --config=configs/tokenizer.py:tiny --workdir=runs/tok_tiny
    seconds on a CPU: 320 pieces (the `tiny` model's vocab) on generated arithmetic text;
    WORKDIR/tokenizer/tokenizer.model and WORKDIR/tokenizer_stats.json (round trip 1.0).
  python -m dsmath_jax.main --config=configs/tokenizer.py --workdir=runs/tok32k \\
    --config.data.files="('/work/shared/data/gsm8k/train.jsonl',)" \\
    --config.data.text_fields="('question', 'answer')"
The full DeepSeek tokenizer (paper §2.3) has a 100K vocabulary; 32K suits 1B-scale
from-scratch comparisons of corpora (§2.2). Set vocab_size to match the model's vocab_size.
"""
import ml_collections

from configs import common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = common.parse_arg(arg, variant="default", vocab_size=0)   # "tiny" | "tiny,vocab_size=512"
  c = ml_collections.ConfigDict()
  c.task = "tokenizer"
  c.vocab_size = args.vocab_size or (320 if args.variant == "tiny" else 32000)
  c.model_type = "bpe"               # "bpe" | "unigram"
  c.character_coverage = 0.9999      # the rarest characters fall back to bytes
  c.output = ""                      # default WORKDIR/tokenizer
  c.stats_sample = 2000              # texts used for tokenizer_stats.json
  c.data = dict(files=(), text_fields=("text",), max_sentences=2_000_000, generated_size=0)
  if args.variant == "tiny":
    c.data.generated_size = 3000
    c.stats_sample = 200
  return c
