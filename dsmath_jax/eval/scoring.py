"""Grading a benchmark's model outputs and summarizing them (the numbers of the paper's tables).

`score` takes the questions and the outputs per question id (from the sampler or from a
predictions file), extracts each sample's answer the way the benchmark's answer kind asks
(grading/kinds.py: a number or expression, option letters, several blanks, an OCW quantity),
grades every sample with one `Grader` pool, and returns one row per sample plus a summary:
accuracy (greedy, or mean over samples) with its standard error, maj@k and pass@k, program
accuracy for tool-integrated outputs (§3.2), breakdowns by subject and level where the data
have them, grader timeouts/errors, and where math-verify disagrees with our grader.
"""
import collections
import time

import numpy as np

from dsmath_jax.eval import metrics
from dsmath_jax.grading import answer as answer_lib
from dsmath_jax.grading import blanks, kinds
from dsmath_jax.grading.grader import Grader

MAX_LISTED = 200   # disagreements / timeouts listed in summary.json (counts are always complete)


def _breakdown(per_question: list[dict], key: str) -> dict:
  groups = collections.defaultdict(list)
  for q in per_question:
    groups[q[key]].append(float(np.mean(q["correct"])))
  return {str(name): dict(questions=len(values), accuracy=100.0 * float(np.mean(values)))
          for name, values in sorted(groups.items(), key=lambda kv: str(kv[0]))}


def gold_of(question: dict, kind: str):
  """The gold answer as the grader takes it: blanks as a tuple for cloze, else the string."""
  return blanks.gold_blanks(question["answer"]) if kind == "cloze" else question["answer"]


def score(questions: list[dict], outputs: dict[str, list[str]], grader: Grader, *, kind: str = "math",
          language: str = "en", program_accuracy: bool | None = None, progress=None,
          prompts: dict[str, str] | None = None) -> tuple[list[dict], dict]:
  """(sample rows, summary) for the questions that have outputs.

  kind: the benchmark's answer kind (grading/kinds.py). program_accuracy: also grade the last
  ```output block of each sample (tool-integrated runs); None = when any output has one.
  prompts: {question id: prompt text}, logged with each sample.
  """
  graded = [q for q in questions if outputs.get(q["id"])]
  samples = [(q, j, text) for q in graded for j, text in enumerate(outputs[q["id"]])]
  if program_accuracy is None:
    program_accuracy = kind == "math" and any("```output" in text for _, _, text in samples)
  golds = {q["id"]: gold_of(q, kind) for q in graded}
  extracted = [kinds.extract(text, kind, options=q.get("options"), gold=golds[q["id"]], language=language,
                             paper_compat=grader.paper_compat) for q, _, text in samples]
  start = time.time()
  verdicts = grader.grade_many([(a, golds[q["id"]], kind) for a, (q, _, _) in zip(extracted, samples)], progress)
  grading_s = time.time() - start
  program_verdicts, program_answers = None, None
  if program_accuracy:
    program_answers = [answer_lib.extract_answer(text, mode="program") for _, _, text in samples]
    program_verdicts = grader.grade_many([(a, golds[q["id"]], kind) for a, (q, _, _) in zip(program_answers, samples)])

  rows = []
  for i, ((q, j, text), answer, verdict) in enumerate(zip(samples, extracted, verdicts)):
    answer = list(answer) if isinstance(answer, tuple) else answer
    row = dict(id=q["id"], sample=j, prompt=(prompts or {}).get(q["id"], ""), prediction=text, extracted=answer,
               gold=q["answer"],
               correct=bool(verdict.correct), status=verdict.status, rule=verdict.detail,
               math_verify=verdict.math_verify, subject=q.get("subject", ""), level=q.get("level", 0))
    if program_verdicts is not None:
      row.update(program_extracted=program_answers[i], program_correct=bool(program_verdicts[i].correct))
    rows.append(row)

  per_question = collections.OrderedDict()
  for row in rows:
    q = per_question.setdefault(row["id"], dict(answers=[], correct=[], program=[], subject=row["subject"],
                                                level=row["level"]))
    q["answers"].append(None if row["extracted"] is None else str(row["extracted"]))
    q["correct"].append(row["correct"])
    if program_verdicts is not None:
      q["program"].append(row["program_correct"])
  per_question = list(per_question.values())
  sample_counts = collections.Counter(len(q["correct"]) for q in per_question)

  summary = metrics.summarize(per_question)
  summary.update(
      questions_in_benchmark=len(questions),
      questions_without_outputs=len(questions) - len(graded),
      samples=len(rows),
      samples_per_question_counts={str(k): v for k, v in sorted(sample_counts.items())},
      correct_samples=sum(r["correct"] for r in rows),
      no_answer_samples=sum(r["extracted"] is None for r in rows),
      grading_seconds=round(grading_s, 3),
      answers_graded_per_second=round(len(rows) / grading_s, 1) if grading_s > 0 else None)
  if program_verdicts is not None:
    summary["program_accuracy"] = 100.0 * float(np.mean([np.mean(q["program"]) for q in per_question]))
  if any(q["subject"] for q in per_question):
    summary["by_subject"] = _breakdown(per_question, "subject")
  if any(q["level"] for q in per_question):
    summary["by_level"] = _breakdown(per_question, "level")

  def listed(r):
    return dict(id=r["id"], sample=r["sample"], extracted=r["extracted"], gold=r["gold"], ours=r["correct"],
                math_verify=r["math_verify"], rule=r["rule"])
  failures = [r for r in rows if r["status"] != "ok"]
  summary["grader"] = dict(
      timeout_s=grader.timeout_s, timeouts=sum(r["status"] == "timeout" for r in rows),
      errors=sum(r["status"] == "error" for r in rows), worker_restarts=grader.restarts,
      failed=[dict(listed(r), status=r["status"]) for r in failures[:MAX_LISTED]],
      rules=dict(collections.Counter(r["rule"] for r in rows)))
  judged = [r for r in rows if r["math_verify"] is not None]
  if grader.second_opinion:
    disagreements = [r for r in judged if r["math_verify"] != r["correct"]]
    summary["math_verify"] = dict(
        judged=len(judged), agreement=100.0 * (1 - len(disagreements) / len(judged)) if judged else None,
        ours_only=sum(r["correct"] for r in disagreements),
        math_verify_only=sum(not r["correct"] for r in disagreements),
        disagreements=[listed(r) for r in disagreements[:MAX_LISTED]])
  return rows, summary
