"""Task `eval`: the benchmarks of the paper's tables on a checkpoint (or on given outputs), graded and reported.

Prompts (paper §2.2.1, §3.2): base checkpoints get each benchmark's fixed few-shot CoT prompt
(`prompt.fewshot`), instruct/RL checkpoints the zero-shot CoT or tool-integrated instruction in
the benchmark's language; the "tool" template runs each program in the sandbox and feeds its
output back (sample/tool_loop.py). One greedy sample per question gives the tables' accuracy;
`sampling.num_samples=k` at temperature 0.7 gives maj@k and pass@k (Figure 7).

Writes WORKDIR/config.json, WORKDIR/eval/<benchmark>/{samples.jsonl, summary.json, report.md,
accuracy_vs_k.png} for each benchmark and WORKDIR/eval/summary.{md,json,png}, the table.
With `predictions` (a JSONL of {"id", "output"} lines, or a folder of <benchmark>.jsonl files)
it regrades those outputs and needs no model. WORKDIR, `checkpoint` and `predictions` may be gs://
URLs: every path goes through dsmath_jax.paths.
"""
from absl import logging

from dsmath_jax import config_types, console, paths
from dsmath_jax.benchmarks import catalog, load
from dsmath_jax.eval import evaluate, generate, predictions as predictions_lib, report, table
from dsmath_jax.eval.settings import DataConfig, GraderConfig, PromptConfig, SamplingConfig
from dsmath_jax.grading.grader import Grader
from dsmath_jax.sample.tool_loop import SandboxConfig, ToolConfig

_TOP_LEVEL = ("task", "seed", "checkpoint", "tokenizer", "predictions", "model", "data", "prompt", "sampling", "grader",
              "tool", "sandbox", "mesh", "distributed", "logical_axis_rules")


def _predictions_file(predictions: str, name: str, several: bool) -> str:
  if paths.path(predictions).is_dir():
    return paths.join(predictions, f"{name}.jsonl")
  if several:
    raise ValueError(f"config.predictions={predictions!r} is one file but several benchmarks are run: give a "
                     "folder of <benchmark>.jsonl files")
  return predictions


def _load_model(config, mesh, rules):
  """(LlamaConfig, params, tokenizer) from config.checkpoint, or a random init of config.model."""
  import flax.linen as nn
  import jax

  from dsmath_jax.model import llama, loading
  pretrained = loading.load_or_init(str(config.checkpoint), llama.LlamaConfig.from_config(config.model),
                                    tokenizer=str(config.tokenizer), mesh=mesh, rules=rules)
  params = pretrained.params
  if params is None:
    params = nn.unbox(llama.init_params(pretrained.config, jax.random.key(int(config.seed))))
  return pretrained.config, params, pretrained.tokenizer


def typed_config(config) -> tuple:
  """The door: (data, prompt, sampling, grader, tool, sandbox) typed; unknown keys refused by name
  (config.model and config.mesh too, for a model run)."""
  unknown = sorted(set(config.keys()) - set(_TOP_LEVEL))
  if unknown:
    raise ValueError(f"unknown config key(s) {', '.join('config.' + k for k in unknown)}; eval knows {_TOP_LEVEL}")
  if not config.predictions:                   # a model run; predictions mode imports no jax
    from dsmath_jax import runtime
    from dsmath_jax.model import llama
    llama.LlamaConfig.from_config(config.model)
    runtime.MeshConfig.from_config(config.mesh)
  return (DataConfig.from_config(config.data), PromptConfig.from_config(config.prompt),
          SamplingConfig.from_config(config.sampling), GraderConfig.from_config(config.grader),
          ToolConfig.from_config(config.tool), SandboxConfig.from_config(config.sandbox))


def run(config, workdir: str) -> dict:
  """Task `eval`; returns {benchmark: summary} (also in WORKDIR/eval/)."""
  data, prompt, sampling, grading, tool, sandbox = typed_config(config)
  config_types.write_config(config, workdir)
  predictions, seed = str(config.predictions), int(config.seed)
  # Every benchmark is read before any work: a missing or empty file fails now, not an hour in.
  suites = {name: (catalog.get(name), load.questions(name, data.path(name), limit=data.limit))
            for name in data.benchmarks}
  style = "fewshot" if prompt.fewshot else prompt.template
  model = None
  if not predictions:
    from dsmath_jax import runtime
    mesh, rules = runtime.setup(config)
    model = (*_load_model(config, mesh, rules), mesh, rules)

  summaries = {}
  with Grader(workers=grading.workers, timeout_s=grading.timeout_s, second_opinion=grading.second_opinion,
              memory_mb=grading.memory_mb, paper_compat=grading.paper_compat) as grader:
    for name, (benchmark, questions) in suites.items():
      bad_lines, generation, prompts = [], {}, {}
      if predictions:
        source = _predictions_file(predictions, name, len(suites) > 1)
        outputs, bad_lines = predictions_lib.read_predictions(
            source, [q["id"] for q in questions], id_field=data.predictions_id_field,
            output_field=data.predictions_output_field)
        for bad in bad_lines[:20]:
          logging.warning("bad prediction line: %s", bad["error"])
      else:
        model_config, params, tokenizer, mesh, rules = model
        texts = generate.prompt_texts(benchmark, questions, prompt, tokenizer)
        prompts = {q["id"]: text for q, text in zip(questions, texts)}
        with console.progress(f"{name}: sample", len(questions) * sampling.num_samples, unit="sample",
                              enabled=_process_index() == 0) as bar:
          outputs, generation = generate.generate_outputs(
              params, model_config, tokenizer, benchmark, questions, texts, prompt=prompt, sampling=sampling,
              tool=tool, sandbox=sandbox, seed=seed, mesh=mesh, rules=rules, progress=bar.update)
      total = sum(len(v) for v in outputs.values())
      with console.progress(f"{name}: grade", total, unit="answer",
                            enabled=model is None or _process_index() == 0) as bar:
        rows, summary = evaluate.score_benchmark(benchmark, questions, outputs, grader, prompts=prompts,
                                                 tool_run=prompt.tool, progress=bar.update)
      summary["run"] = dict(
          benchmark=name, title=benchmark.title, source=data.path(name), answer_kind=benchmark.answer,
          mode="predictions" if predictions else "model", prompt_style=style, reported=benchmark.reported,
          checkpoint=str(config.checkpoint) or ("" if predictions else f"random init of {config.model.preset}"),
          predictions=predictions, rules="paper_compat" if grading.paper_compat else "strict",
          prompt="" if predictions else style + (" (chat template)" if prompt.chat else ""),
          sampling={} if predictions else config_types.plain(config.sampling), generation=generation)
      summary["bad_lines"] = bad_lines
      summaries[name] = summary
      if model is None or _process_index() == 0:   # multi-host: every host samples and grades; one writes
        report.write(paths.join(workdir, "eval", data.folder(name)), rows, summary)
      logging.info("%s: accuracy %.1f%% ± %.1f on %d questions", name, summary["accuracy"],
                   summary["accuracy_stderr"], summary["questions"])
      print(f"{name}: accuracy {summary['accuracy']:.1f}% ± {summary['accuracy_stderr']:.1f} "
            f"on {summary['questions']} questions")

  if model is None or _process_index() == 0:
    header = dict(checkpoint=str(config.checkpoint), predictions=predictions, prompt=style,
                  rules="paper_compat" if grading.paper_compat else "strict",
                  sampling="greedy" if sampling.greedy else f"{sampling.num_samples} samples, T={sampling.temperature}")
    written = table.write(paths.join(workdir, "eval"), summaries, header)
    logging.info("table: %s", written["md"])
  return summaries


def _process_index() -> int:
  import jax
  return jax.process_index()
