"""Task `eval`: sample a checkpoint on a benchmark (or read given outputs), grade, report.

Prompts (paper §2.2.1 and §3.2): instruct/RL checkpoints get the zero-shot chain-of-thought or
tool-integrated template of templates.py; base checkpoints get few-shot CoT (fewshot.py).
Tool-integrated runs execute each program in the sandbox and feed its output back
(sample/tool_loop.py). One greedy sample per question gives the tables' accuracy;
`sampling.num_samples=k` at temperature 0.7 gives maj@k and pass@k (Figure 7).
"""
import os
import time

from absl import logging

from dsmath_jax import templates
from dsmath_jax.eval import benchmark, fewshot, report, scoring
from dsmath_jax.grading.grader import Grader


def load_questions(config) -> list[dict]:
  d = config.data
  return benchmark.load_questions(
      d.path, fmt=d.format, question_field=d.question_field, answer_field=d.answer_field,
      answer_from=d.answer_from, id_field=d.id_field, subject_field=d.subject_field,
      level_field=d.level_field, limit=int(d.limit))


def prompt_texts(config, questions: list[dict], tokenizer=None) -> list[str]:
  """The prompt string of every question under config.prompt.

  prompt.chat: the template's user turn (question + instruction) goes through the checkpoint's
  own chat template (tokenizer.render_chat) instead of DeepSeekMath's "User: ... Assistant:".
  """
  p = config.prompt
  if p.chat and int(p.fewshot) == 0:
    from dsmath_jax import tokenizer as tokenizer_lib
    users = [templates.render(q["question"], p.template).removeprefix("User: ").removesuffix("\n\nAssistant:")
             for q in questions]
    return [tokenizer_lib.render_chat(tokenizer, [dict(role="user", content=u)]) for u in users]
  if int(p.fewshot) > 0:
    if not p.fewshot_style or not p.fewshot_path:
      raise ValueError("prompt.fewshot > 0 needs prompt.fewshot_style (gsm8k|math) and prompt.fewshot_path "
                       "(a training file to draw exemplars from)")
    exemplars = fewshot.select_exemplars(p.fewshot_path, p.fewshot_style, int(p.fewshot), int(p.fewshot_seed))
    return [fewshot.render(q["question"], exemplars, p.fewshot_style) for q in questions]
  return [templates.render(q["question"], p.template) for q in questions]


def _load_model(config, mesh, rules):
  """(LlamaConfig, params, tokenizer) from config.checkpoint, or a random config.model."""
  import flax.linen as nn
  import jax

  from dsmath_jax import tokenizer as tokenizer_lib
  from dsmath_jax.model import llama
  if config.checkpoint:
    from dsmath_jax.model import loading
    pretrained = loading.load_pretrained(config.checkpoint, mesh=mesh, rules=rules)
    tokenizer = pretrained.tokenizer or tokenizer_lib.load_tokenizer(config.tokenizer)
    return pretrained.config, pretrained.params, tokenizer
  model_config = llama.LlamaConfig.from_config(config.model)
  params = nn.unbox(llama.init_params(model_config, jax.random.key(int(config.seed))))
  return model_config, params, tokenizer_lib.load_tokenizer(config.tokenizer)


def generate_outputs(config, questions: list[dict]) -> tuple[dict[str, list[str]], dict]:
  """({question id: [output text, ...]}, generation stats) from the checkpoint in config."""
  import jax

  from dsmath_jax import sharding
  from dsmath_jax.sample import sampler
  sharding.maybe_initialize_distributed(config)
  mesh = sharding.make_mesh(config.mesh)
  rules = tuple(tuple(rule) for rule in config.logical_axis_rules)
  model_config, params, tokenizer = _load_model(config, mesh, rules)
  s, p = config.sampling, config.prompt
  texts = prompt_texts(config, questions, tokenizer)
  # Chat templates write BOS themselves where they want it.
  bos = [tokenizer.bos_id] if tokenizer.bos_id is not None and not p.chat else []
  prompts = [bos + tokenizer.encode(text) for text in texts]
  room = model_config.max_position_embeddings - int(s.max_new_tokens)
  too_long = [q["id"] for q, ids in zip(questions, prompts) if len(ids) > room]
  if too_long:
    raise ValueError(f"{len(too_long)} prompts (e.g. {too_long[:3]}) exceed max_position_embeddings - "
                     f"max_new_tokens = {room} tokens; lower sampling.max_new_tokens or prompt.fewshot")
  stops = fewshot.stop_strings(p.fewshot_style) if int(p.fewshot) > 0 else ()
  sampling = sampler.SamplingParams(
      max_new_tokens=int(s.max_new_tokens), temperature=float(s.temperature), top_p=float(s.top_p),
      top_k=int(s.top_k), num_samples=int(s.num_samples), stop_strings=tuple(stops), greedy=bool(s.greedy))
  rng = jax.random.key(int(config.seed))
  total_rows, done = len(prompts) * sampling.num_samples, [0]

  def progress(rows):
    done[0] += rows
    logging.info("sampled %d / %d outputs", done[0], total_rows)

  start = time.time()
  if p.template == "tool" and int(p.fewshot) == 0:
    from dsmath_jax.sample import tool_loop
    from dsmath_jax.sandbox.sandbox import Sandbox
    with Sandbox(workers=int(config.sandbox.workers),
                 allow_unisolated=bool(config.sandbox.allow_unisolated)) as box:
      completions = tool_loop.generate_with_tools(
          params, model_config, tokenizer, prompts, sampling, rng, mesh=mesh, rules=rules,
          max_tool_rounds=int(s.max_tool_rounds), batch_size=int(s.batch_size), progress=progress,
          sandbox=box)
  else:
    completions = sampler.generate(params, model_config, tokenizer, prompts, sampling, rng, mesh=mesh,
                                   rules=rules, batch_size=int(s.batch_size), progress=progress)
  seconds = time.time() - start
  outputs: dict[str, list[str]] = {}
  for completion in completions:
    text = completion.text
    if int(p.fewshot) > 0:
      text = fewshot.truncate(text, p.fewshot_style)
    # An output that is only whitespace is still a sample: grade it (as no answer), never drop it.
    outputs.setdefault(questions[completion.prompt_index]["id"], []).append(text)
  new_tokens = sum(len(c.token_ids) for c in completions)
  finish = {}
  for completion in completions:
    finish[completion.finish_reason] = finish.get(completion.finish_reason, 0) + 1
  stats = dict(sampling_seconds=round(seconds, 2), new_tokens=new_tokens,
               tokens_per_second=round(new_tokens / seconds, 1) if seconds > 0 else None, finish_reasons=finish)
  return outputs, stats


def run(config, workdir: str) -> dict:
  """Task `eval`; returns the summary (also in WORKDIR/eval/<benchmark>/summary.json)."""
  questions = load_questions(config)
  out_dir = os.path.join(workdir, "eval", config.data.name)
  bad_lines, generation = [], {}
  if config.predictions:
    outputs, bad_lines = benchmark.read_predictions(
        config.predictions, [q["id"] for q in questions], id_field=config.data.predictions_id_field,
        output_field=config.data.predictions_output_field)
    for bad in bad_lines:
      logging.warning("bad prediction line: %s", bad["error"])
  else:
    outputs, generation = generate_outputs(config, questions)
  g = config.grader
  total, done, last = sum(len(v) for v in outputs.values()), [0], [0.0]

  def progress(n):
    done[0] += n
    if time.time() - last[0] > 10 or done[0] == total:
      last[0] = time.time()
      logging.info("graded %d / %d answers", done[0], total)

  with Grader(workers=int(g.workers), timeout_s=float(g.timeout_s), second_opinion=bool(g.second_opinion),
              memory_mb=int(g.memory_mb)) as grader:
    tool_run = not config.predictions and config.prompt.template == "tool" and int(config.prompt.fewshot) == 0
    rows, summary = scoring.score(questions, outputs, grader, progress=progress,
                                  program_accuracy=True if tool_run else None)
  summary["run"] = dict(
      benchmark=config.data.name, source=config.data.path,
      mode="predictions" if config.predictions else "model",
      checkpoint=config.checkpoint or ("" if config.predictions else f"random init of {config.model.preset}"),
      predictions=config.predictions,
      prompt=("" if config.predictions else
              f"{config.prompt.fewshot}-shot {config.prompt.fewshot_style}" if int(config.prompt.fewshot) > 0
              else config.prompt.template + (" (chat template)" if config.prompt.chat else "")),
      sampling={} if config.predictions else config.sampling.to_dict(), generation=generation)
  summary["bad_lines"] = bad_lines
  if not config.predictions:
    import jax
    if jax.process_index() != 0:  # multi-host: every host samples its rows and grades; one writes
      return summary
  paths = report.write(out_dir, rows, summary)
  headline = f"{config.data.name}: accuracy {summary['accuracy']:.1f}% on {summary['questions']} questions"
  if summary["samples_per_question"] > 1:
    k = str(summary["samples_per_question"])
    headline += f", maj@{k} {summary['maj@k'][k]:.1f}%, pass@{k} {summary['pass@k'][k]:.1f}%"
  logging.info("%s; %s", headline, paths["report.md"])
  print(headline)
  return summary
