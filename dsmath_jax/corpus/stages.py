"""The per-record functions of each stage, shared by the in-process runner (pipeline.py) and Beam (beam.py).

Everything here is a plain function of its arguments (no global state), so a Beam worker and the in-process
loop compute the same thing; the orchestration (which round, which files, resuming) lives in pipeline.py.
"""
from dsmath_jax import decontaminate
from dsmath_jax.corpus import classify, domains, langid, read


def load_tokenizer(path: str):
  """The configured tokenizer (dsmath_jax/tokenizer.py; "byte" needs no file)."""
  from dsmath_jax import tokenizer
  return tokenizer.load_tokenizer(path)


def input_files(specs) -> list[tuple[dict, str]]:
  """(spec, file) for every file the input specs name (globs expanded, local or fsspec)."""
  return [(dict(spec), path) for spec in specs for path in read.expand(spec["path"])]


def pages_of_file(spec: dict, path: str, counts: read.Counts, *, languages, identify, tokenizer,
                  limits: read.Limits = read.Limits()):
  """Stage 1 for one file: extracted pages with `lang`, `domain` and `num_tokens`, filtered by language."""
  counts.add("kept", n=0)                          # pages kept = pages read - skipped/language_*
  for page in read.read_file(spec, path, counts, limits):
    lang = identify(page["text"]) if languages else ""
    if languages and lang not in languages:
      counts.add(f"skipped/language_{lang}", page["source"], "", "not in the configured languages")
      continue
    page["lang"] = lang
    page["domain"] = domains.domain_of(page["url"])
    page["num_tokens"] = len(tokenizer.encode(page["text"]))
    counts.add("kept")
    counts.add("kept_tokens", n=page["num_tokens"])
    yield page


def make_identifier(lid_model: str):
  """The language identifier: fastText `lid_model` (lid.176.bin), or the heuristic when empty."""
  return langid.LanguageIdentifier(lid_model or None)


def is_negative(page: dict, rate: float) -> bool:
  """Random-page negatives (paper: random Common Crawl pages), drawn by a hash of the id so runners agree."""
  return classify.stable_fraction(page["id"], "negative") < rate


def is_heldout(page: dict, fraction: float) -> bool:
  return classify.stable_fraction(page["id"], "heldout") < fraction


def score_record(page: dict, score: float) -> dict:
  """What a round keeps per scored page (the text stays in the dedup stage)."""
  return {"id": page["id"], "url": page["url"], "score": round(float(score), 6),
          "num_tokens": page["num_tokens"]}


def decontaminate_pages(pages, decontaminator, counts: read.Counts, tokenizer):
  """Stage 5 over pages: cleaned pages (token counts redone where text was removed), plus the hits (one dict
  per removed segment)."""
  kept, hits = [], []
  for page in pages:
    cleaned, page_hits = decontaminate.decontaminate_page(page, decontaminator)
    hits += page_hits
    if page_hits:
      counts.add("decontaminate/pages_with_hits")
      counts.add("decontaminate/segments_removed", n=len(page_hits))
      for hit in page_hits:
        counts.add(f"decontaminate/hits_{hit['benchmark']}")
    if cleaned is None:
      counts.add("decontaminate/pages_dropped")
      continue
    if page_hits:
      cleaned["num_tokens"] = len(tokenizer.encode(cleaned["text"]))
    counts.add("decontaminate/kept")
    kept.append(cleaned)
  return kept, hits
