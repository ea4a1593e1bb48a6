"""Task `quickstart`: the DeepSeekMath recipe end to end in miniature (configs/quickstart.py).

  problems (generated arithmetic, disjoint sft/rl/test) -> corpus (§2.1, fastText rounds)
  -> tokenizer (§2.3, SentencePiece on corpus + arithmetic) -> pretrain (§2.3) -> sft (§3.1)
  -> eval_sft -> grpo (§4.1, rule reward) -> eval_grpo -> WORKDIR/summary.{md,json}

Every stage is the stage's own task `run(config, workdir)` with its own nested config, run in
this process into WORKDIR/<stage>; nothing here trains or samples. A stage whose outputs exist
is skipped, so re-running the command resumes after the last finished stage (pretrain and sft
also resume mid-run from their checkpoints). The table is built from the files the stages
wrote, never from in-memory results, so a resumed run reports the same numbers.
"""
import dataclasses
import json
import os
import shutil
import time

from absl import logging

from dsmath_jax import config_types, console, templates

WORKDIR_TOKEN = "{workdir}"
STAGE_RECORD = "quickstart_stage.json"     # WORKDIR/<stage>/: the resolved config, wall and CPU seconds


# ---- Config ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ProblemsConfig:
  """`config.problems`: the generated word problems (dsmath_jax/data/word_problems.py); the test
  problems share no template and no numbers with the sft / rl ones."""
  seed: int                      # generator seed
  sft: int                       # problems for SFT (and pretraining text)
  rl: int                        # GRPO questions
  test: int                      # held-out problems of eval_sft / eval_grpo
  family: str                    # "one_step" (x +- r) or "two_step" (p * q or p + q, then +- r)
  teacher_error: float           # share of SFT solutions that apply the wrong last operation
  max_start: int                 # bound of a one-step problem's starting count
  max_factor: int                # bound of the multiplied numbers (two_step)
  max_addend: int                # bound of the added / removed numbers
  test_number_fraction: float    # share of the number tuples kept for test problems only
  solution_format: str = "equation"   # "equation" (13 - 4 = 9.) | "counting" (13 - 4 = 12 - 3 = ... = 9.)

  @classmethod
  def from_config(cls, section, where: str = "config.problems") -> "ProblemsConfig":
    return config_types.from_section(cls, section, where=where)


def _stage_doors() -> dict:
  """Stage -> its task's door (typed_config), to check every stage's config before any runs.
  The grpo and eval stages are checked by their own tasks when they start."""
  from dsmath_jax import tokenizer_task
  from dsmath_jax.corpus import pipeline
  from dsmath_jax.train import trainer
  return {"corpus": pipeline.typed_config, "tokenizer": tokenizer_task.typed_config,
          "pretrain": trainer.typed_config, "sft": trainer.typed_config}


def typed_config(config) -> ProblemsConfig:
  """The door: the stage list, the problems section and each stage's config through its door."""
  stages = tuple(config.stages)
  missing = [s for s in stages if s not in config]
  if missing:
    raise ValueError(f"config.stages names {missing}, which have no config section")
  known = ("task", "stages", "problems", "corpus", "tokenizer", "pretrain", "sft", "grpo")
  unknown = sorted(k for k in config if k not in known and not k.startswith("eval"))
  if unknown:
    raise ValueError(f"unknown config key(s) {', '.join(f'config.{k}' for k in unknown)}; "
                     f"a quickstart config holds {list(known)} and eval_* stages")
  doors = _stage_doors()
  for stage in stages:
    if stage in doors:
      try:
        doors[stage](config[stage])
      except ValueError as error:
        raise ValueError(f"config.{stage} (the {stage} stage's own config): {error}") from error
  return ProblemsConfig.from_config(config.problems)

def _substitute(value, workdir: str):
  if isinstance(value, str):
    return value.replace(WORKDIR_TOKEN, workdir)
  if isinstance(value, (list, tuple)):
    return type(value)(_substitute(v, workdir) for v in value)
  if isinstance(value, dict):
    return {k: _substitute(v, workdir) for k, v in value.items()}
  return value


def resolve(stage_config, workdir: str):
  """A copy of a stage's config with "{workdir}" replaced by the quickstart's WORKDIR everywhere."""
  import ml_collections
  return ml_collections.ConfigDict(_substitute(stage_config.to_dict(), os.path.abspath(workdir)))


# ---- Stage inputs the tasks do not make themselves ----------------------------------------------

def write_problems(problems_config: ProblemsConfig, directory: str) -> dict:
  """WORKDIR/problems/{test,rl,sft}.jsonl and overlap.json from the word-problem generator
  (dsmath_jax/data/word_problems.py): test problems use templates and numbers no sft/rl problem
  uses. The SFT solutions come from an imperfect teacher (problems_config.teacher_error of them
  apply the wrong operation); `answer` is always the true one.

  Records carry what each consumer reads: `question`/`answer` (GRPO, eval), `prompt`/`response`
  (SFT; prompt = the CoT template of templates.py), `text` (pretraining, tokenizer)."""
  from dsmath_jax.data import word_problems
  sizes = {name: getattr(problems_config, name) for name in ("test", "rl", "sft")}
  train, test = word_problems.generate(
      sizes["sft"] + sizes["rl"], sizes["test"], seed=problems_config.seed,
      teacher_error=problems_config.teacher_error, family=problems_config.family,
      max_factor=problems_config.max_factor, max_addend=problems_config.max_addend,
      max_start=problems_config.max_start, test_number_fraction=problems_config.test_number_fraction,
      solution_format=problems_config.solution_format)
  overlap = word_problems.overlap(test, train)
  if overlap["same_template_and_numbers"]:
    raise ValueError(f"problems: {overlap['same_template_and_numbers']} test problems repeat a training problem")
  splits = {"test": test, "rl": train[sizes["sft"]:], "sft": train[:sizes["sft"]]}
  os.makedirs(directory, exist_ok=True)
  for name, records in splits.items():
    with open(os.path.join(directory, f"{name}.jsonl"), "w") as f:
      for index, record in enumerate(records):
        f.write(json.dumps(dict(
            id=f"{name}-{index}", question=record["question"], answer=record["answer"],
            prompt=templates.render(record["question"], "cot"), response=record["solution"],
            text=f"Question: {record['question']}\nAnswer:{record['solution']}\n",
            teacher_correct=record["teacher_correct"], template=record["template"],
            numbers=record["numbers"])) + "\n")
  with open(os.path.join(directory, "overlap.json"), "w") as f:
    json.dump(overlap, f, indent=1)
  return {name: len(records) for name, records in splits.items()}


def export_corpus_text(data_dir: str, path: str) -> int:
  """The `dsmath_corpus` pages as JSONL {"text"} (the tokenizer task reads JSONL); returns pages."""
  from dsmath_jax.datasets import load_source
  source = load_source("dsmath_corpus", "train", data_dir)
  if len(source) == 0:
    raise ValueError(f"{data_dir}/dsmath_corpus is empty: the corpus stage collected no page")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    for index in range(len(source)):
      f.write(json.dumps({"text": source[index]["text"]}) + "\n")
  return len(source)


# ---- Stages ------------------------------------------------------------------------------------

def _model_saved(directory: str) -> bool:
  return os.path.isfile(os.path.join(directory, "model", "model.json"))


def stage_done(stage: str, stage_dir: str, stage_config) -> bool:
  """Whether a stage's final output exists (what the next stage reads)."""
  if stage == "problems":
    return all(os.path.isfile(os.path.join(stage_dir, f"{n}")) for n in ("test.jsonl", "rl.jsonl", "sft.jsonl",
                                                                          "overlap.json"))
  if stage == "corpus":
    return os.path.isfile(os.path.join(stage_dir, "corpus", "stats.json"))
  if stage == "tokenizer":
    return os.path.isfile(os.path.join(stage_dir, "tokenizer_stats.json"))
  if stage.startswith("eval"):
    return os.path.isfile(os.path.join(stage_dir, "eval", stage_config.data.name, "summary.json"))
  return _model_saved(stage_dir)


def run_stage(stage: str, stage_config, stage_dir: str, workdir: str):
  """Runs one stage through its task's run(); local imports as in main.tasks()."""
  if stage == "problems":
    return write_problems(ProblemsConfig.from_config(stage_config), stage_dir)
  if stage == "corpus":
    from dsmath_jax.corpus import pipeline
    return pipeline.run(stage_config, stage_dir)
  if stage == "tokenizer":
    export_corpus_text(os.path.join(workdir, "corpus", "tfds"), os.path.join(stage_dir, "corpus_text.jsonl"))
    from dsmath_jax import tokenizer_task
    return tokenizer_task.run(stage_config, stage_dir)
  if stage == "pretrain":
    from dsmath_jax.eval import during_training
    from dsmath_jax.train import pretrain
    return pretrain.run(stage_config, stage_dir, benchmark_evaluator=during_training.make_evaluator)
  if stage == "sft":
    from dsmath_jax.eval import during_training
    from dsmath_jax.train import sft
    return sft.run(stage_config, stage_dir, benchmark_evaluator=during_training.make_evaluator)
  if stage == "grpo":
    from dsmath_jax.eval import during_training
    from dsmath_jax.rl import grpo
    # GRPO does not resume mid-run: an unfinished run starts over, with fresh metrics.
    for leftover in ("metrics.jsonl", "tensorboard"):
      path = os.path.join(stage_dir, leftover)
      if os.path.isdir(path):
        shutil.rmtree(path)
      elif os.path.exists(path):
        os.remove(path)
    return grpo.run(stage_config, stage_dir, benchmark_evaluator=during_training.make_evaluator)
  if stage.startswith("eval"):
    from dsmath_jax.eval import task as eval_task
    return eval_task.run(stage_config, stage_dir)
  raise ValueError(f"quickstart: unknown stage {stage!r}")


# ---- Summary -----------------------------------------------------------------------------------

def _read_json(path: str):
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return json.load(f)


def _curve(path: str, key: str) -> list[tuple[int, float]]:
  from dsmath_jax.train.metrics import read_metrics           # a resumed step overwrites
  if not os.path.isfile(path):
    return []
  return [(int(r["step"]), float(r[key])) for r in read_metrics(path) if key in r]


def _first_last(points, window: int = 1) -> dict | None:
  if not points:
    return None
  values = [v for _, v in points]
  window = min(window, max(len(values) // 2, 1))
  return dict(first=sum(values[:window]) / window, last=sum(values[-window:]) / window,
              steps=points[-1][0], window=window)


def summarize(config, workdir: str) -> dict:
  """The numbers of the table, read from what each stage wrote under WORKDIR."""
  summary = {"workdir": os.path.abspath(workdir), "seconds": {}, "cpu_seconds": {}}
  for stage in config.stages:
    record = _read_json(os.path.join(workdir, stage, STAGE_RECORD)) or {}
    summary["seconds"][stage] = record.get("seconds")
    summary["cpu_seconds"][stage] = record.get("cpu_seconds")
  overlap = _read_json(os.path.join(workdir, "problems", "overlap.json"))
  if overlap:
    summary["problems"] = overlap
  stats = _read_json(os.path.join(workdir, "corpus", "corpus", "stats.json"))
  if stats:
    summary["corpus"] = dict(
        rounds=[dict(round=r["round"], pages=r["collected"], tokens=r["collected_tokens"],
                     overlap_with_previous=r["overlap_with_previous"]) for r in stats["rounds"]],
        written_pages=stats["write"]["counts"]["write/pages"],
        written_tokens=stats["write"]["counts"]["write/tokens"])
  tokenizer = _read_json(os.path.join(workdir, "tokenizer", "tokenizer_stats.json"))
  if tokenizer:
    summary["tokenizer"] = dict(vocab_size=tokenizer["vocab_size"], bytes_per_token=tokenizer["bytes_per_token"],
                                round_trip_exact=tokenizer["round_trip_exact"])
  for stage in ("pretrain", "sft"):
    metrics = os.path.join(workdir, stage, "metrics.jsonl")
    loss, eval_loss = _first_last(_curve(metrics, "loss")), _first_last(_curve(metrics, "eval_loss"))
    if loss or eval_loss:
      summary[stage] = dict(loss=loss, eval_loss=eval_loss)
  metrics = os.path.join(workdir, "grpo", "metrics.jsonl")
  if os.path.isfile(metrics):
    summary["grpo"] = dict(reward=_first_last(_curve(metrics, "reward_mean"), window=5),
                           kl=_first_last(_curve(metrics, "kl"), window=5))
  for stage in ("eval_sft", "eval_grpo"):
    if stage in config.stages:
      result = _read_json(os.path.join(workdir, stage, "eval", config[stage].data.name, "summary.json"))
      if result:
        summary[stage] = dict(accuracy=result["accuracy"], questions=result["questions"],
                              no_answer_samples=result["no_answer_samples"])
  if "eval_sft" in summary and "eval_grpo" in summary:
    before, after = summary["eval_sft"]["accuracy"], summary["eval_grpo"]["accuracy"]
    summary["greedy_accuracy"] = dict(before_grpo=before, after_grpo=after, gain_points=round(after - before, 2))
  for key in ("seconds", "cpu_seconds"):
    known = [s for s in summary[key].values() if s is not None]
    summary[f"total_{key}"] = round(sum(known), 1) if known else None
  return summary


def _change(values: dict | None, fmt: str = "{:.3f}") -> str:
  if not values:
    return "-"
  return f"{fmt.format(values['first'])} -> {fmt.format(values['last'])}"


def table(summary: dict) -> str:
  """summary.md: one row per measured quantity, the stage's wall (and CPU) seconds beside it."""
  def seconds(stage):
    wall, cpu = summary["seconds"].get(stage), summary.get("cpu_seconds", {}).get(stage)
    return "-" if wall is None else f"{wall:.0f}" + ("" if cpu is None else f" ({cpu:.0f})")

  rows = []
  if "problems" in summary:
    p = summary["problems"]
    rows.append(("problems", "held-out sharing template+numbers / template / numbers with training",
                 f"{p['same_template_and_numbers']} / {p['same_template']} / {p['same_numbers']} of "
                 f"{p['test_problems']}", seconds("problems")))
  if "corpus" in summary:
    rounds = " -> ".join(f"{r['pages']} ({r['tokens']:,})" for r in summary["corpus"]["rounds"])
    rows.append(("corpus", "pages (byte tokens) collected per round", rounds, seconds("corpus")))
  if "tokenizer" in summary:
    t = summary["tokenizer"]
    rows.append(("tokenizer", "vocab / bytes per token / exact round trip",
                 f"{t['vocab_size']} / {t['bytes_per_token']:.2f} / {t['round_trip_exact']:.3f}",
                 seconds("tokenizer")))
  for stage in ("pretrain", "sft"):
    if stage in summary:
      s = summary[stage]
      steps = (s["loss"] or s["eval_loss"])["steps"]
      rows.append((stage, f"train loss, first -> last logged ({steps} steps)", _change(s["loss"]), seconds(stage)))
      rows.append((stage, "held-out loss, start -> end", _change(s["eval_loss"]), ""))
  if "eval_sft" in summary:
    e = summary["eval_sft"]
    rows.append(("eval_sft", f"greedy accuracy, {e['questions']} held-out problems", f"{e['accuracy']:.1f}%",
                 seconds("eval_sft")))
  if "grpo" in summary:
    g = summary["grpo"]
    window = (g["reward"] or {}).get("window", 1)
    rows.append(("grpo", f"reward (grader), mean of first -> last {window} steps", _change(g["reward"]),
                 seconds("grpo")))
    rows.append(("grpo", f"KL to the SFT model, first -> last {window} steps", _change(g["kl"], "{:.4f}"), ""))
  if "eval_grpo" in summary:
    e = summary["eval_grpo"]
    rows.append(("eval_grpo", f"greedy accuracy, {e['questions']} held-out problems", f"{e['accuracy']:.1f}%",
                 seconds("eval_grpo")))
  lines = ["# Quickstart: DeepSeekMath in miniature", "", "| stage | measure | value | seconds (CPU) |",
           "|---|---|---|---|"]
  lines += [f"| {' | '.join(row)} |" for row in rows]
  if "greedy_accuracy" in summary:
    g = summary["greedy_accuracy"]
    lines += ["", f"Greedy accuracy on {summary['eval_grpo']['questions']} held-out problems (templates and numbers "
              f"no training problem uses) before -> after GRPO: {g['before_grpo']:.1f}% -> {g['after_grpo']:.1f}% "
              f"({g['gain_points']:+.1f} points)."]
  total, cpu = summary.get("total_seconds"), summary.get("total_cpu_seconds")
  lines += ["", f"Total: {'-' if total is None else f'{total:.0f}'} s wall, {'-' if cpu is None else f'{cpu:.0f}'} s "
            f"CPU (all threads of this process). Outputs: {summary['workdir']}/<stage>.", ""]
  return "\n".join(lines)


# ---- Task --------------------------------------------------------------------------------------

def run(config, workdir: str) -> dict:
  """Task `quickstart`: run the stages not done yet, then write and print the table.

  The console shows a line per stage, each long stage's progress bar with its ETA (the stage's own,
  console.progress), the stages' metrics lines and warnings, and the table; INFO lines, ours and
  the libraries', stay off unless asked for (`--verbosity=1`): the stages' files hold it all."""
  workdir = os.path.abspath(workdir)
  config_types.write_config(config, workdir)
  typed_config(config)
  with console.warnings_only():
    _run_stages(config, workdir)
  summary = summarize(config, workdir)
  text = table(summary)
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
  with open(os.path.join(workdir, "summary.md"), "w") as f:
    f.write(text)
  print(text, flush=True)
  return summary


def _run_stages(config, workdir: str) -> None:
  """Runs, in order, each stage whose outputs do not exist yet; records its wall and CPU seconds."""
  for index, stage in enumerate(config.stages, start=1):
    stage_dir = os.path.join(workdir, stage)
    stage_config = resolve(config[stage], workdir)
    record_path = os.path.join(stage_dir, STAGE_RECORD)
    if stage_done(stage, stage_dir, stage_config):
      previous = _read_json(record_path)
      if previous and previous["config"] != json.loads(stage_config.to_json()):
        logging.warning("quickstart: %s ran with another config; delete %s to redo it", stage, stage_dir)
      print(f"[quickstart {index}/{len(config.stages)}] {stage}: done before, skipped ({stage_dir})", flush=True)
      continue
    print(f"[quickstart {index}/{len(config.stages)}] {stage} -> {stage_dir}", flush=True)
    start, cpu_start = time.time(), time.process_time()
    os.makedirs(stage_dir, exist_ok=True)
    run_stage(stage, stage_config, stage_dir, workdir)
    seconds, cpu_seconds = round(time.time() - start, 1), round(time.process_time() - cpu_start, 1)
    with open(record_path, "w") as f:
      json.dump({"seconds": seconds, "cpu_seconds": cpu_seconds, "config": json.loads(stage_config.to_json())},
                f, indent=1)
    print(f"[quickstart {index}/{len(config.stages)}] {stage} done in {seconds:.0f} s", flush=True)
