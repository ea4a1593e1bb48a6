"""Multiple-choice answers (SAT, MMLU-STEM, Gaokao-MathQA; paper Tables 2-3): the letters a model chose.

Models name their choice by letter ("(B)", "B)", "**B**", "option B", "答案是 D", "选C"), by
the option's text ("$(-3,-6)$"), or both ("(A) $f(-6)=0$"); Gaokao-MathQA has questions with
several right options ("AD", "A, C", "A和D"). The choice is read where the final answer is
(the last \\boxed{}, else the text after a final-answer marker), else from the last explicit
mention of an option letter in the text. DeepSeek-Math's few-shot extractors read only
"the final answer is (X)" (SAT/MMLU) or the letter after "答案是" (Gaokao-MathQA), and its
string match turned "(A) option text" into a wrong letter: that is the 12.5% of the issue.
"""
import re

from dsmath_jax.grading import answer as answer_lib
from dsmath_jax.grading.normalize import normalize

_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_PREFIX = re.compile(r"^(?:the\s+)?(?:correct\s+)?(?:answer|option|choice|选项|选择|选)\s*(?:is|:|：)?\s*", re.I)
_SEPARATORS = r"(?:\s*(?:,|，|、|and|&|和|与|;|；)\s*|)"   # "A, C", "A和D", "AD" (not "(D) B": a letter and a text)


def letters_of(text: str) -> str:
  """A gold label ("A", "ACD", "A B D") as sorted letters ("A", "ACD", "ABD")."""
  return "".join(sorted(set(re.findall(r"[A-Z]", text.upper()))))


def _clean(text: str) -> str:
  text = _WRAPPERS.sub(r"\1", text)
  return text.replace("$", "").replace("**", "").strip().strip(".。:：").strip()


def _plain(text: str) -> str:
  return re.sub(r"\s+", "", text)


def _letters_in(text: str, options: dict[str, str]) -> str | None:
  """The letters an answer span names, or the one option whose text it is; None if neither."""
  letters = "".join(options)
  text = _PREFIX.sub("", _clean(text))
  one = rf"\(?([{letters}])\)?"
  whole = re.fullmatch(rf"{one}(?:{_SEPARATORS}{one})*|[{letters}](?:\s+[{letters}])+", text)
  if whole:  # "B", "(B)", "A, C", "AD", "A和D", "A B D"
    return letters_of("".join(re.findall(rf"[{letters}]", text)))
  for key in (_plain, normalize):  # as written first: "2 m" is not "2 km", though both normalize to "2"
    target = key(text)
    same = [letter for letter, option in options.items() if target and key(_clean(option)) == target]
    if len(same) == 1:  # the option's own text (before the letter rule: "A cell" is a text, not option A)
      return same[0]
  start = re.match(rf"\(([{letters}])\)|([{letters}])[).:：、．]", text)
  if start:  # "(A) f(-6)=0", "A) 5", "B. 12", "C: x"
    return start.group(1) or start.group(2)
  return None


def _last_mention(text: str, options: dict[str, str]) -> str | None:
  """The letter of the last explicit mention: "(C)", "option C", "choice C", "选C"."""
  letters = "".join(options)
  pattern = re.compile(rf"\(([{letters}])\)|(?:option|choice|answer)\s+\(?([{letters}])\b\)?|选\s*([{letters}])",
                       re.I)
  found = [m.group(1) or m.group(2) or m.group(3) for m in pattern.finditer(text)]
  return found[-1].upper() if found else None


def extract_choice(text: str, options: dict[str, str]) -> str | None:
  """The sorted letters a model output chose among `options` ({"A": text, ...}), or None."""
  if text is None:
    return None
  spans = []
  boxed = answer_lib.boxed_answers(text)
  if boxed:
    spans.append(boxed[-1])
  marked = answer_lib.marker_answer(text)
  if marked:
    spans.append(marked)
  line = answer_lib.marker_line(text)
  if line and line != marked:
    spans.append(line)
  for span in spans:
    found = _letters_in(span, options)
    if found:
      return found
  return _last_mention(text, options)


def paper_choice(text: str, language: str) -> str | None:
  """DeepSeek-Math's few-shot choice extraction: "the final answer is (x)" (en), or the last
  of A-D in the line after "答案是" (zh, `eval_agieval_gaokao_mathqa`)."""
  if language == "zh":
    if "答案是" not in text:
      return None
    line = text.split("答案是", 1)[1].strip().split("\n")[0]
    found = max(((line.index(t), t) for t in "ABCD" if t in line), default=None)
    return found[1] if found else None
  match = re.search(r"the final answer is \(?([abcd])\)?", text.lower())
  return match.group(1).upper() if match else None


def choice_equal(prediction: str | None, gold: str) -> bool:
  """Same set of letters (a multi-answer question needs all of them and no other)."""
  return prediction is not None and letters_of(prediction) == letters_of(gold)
