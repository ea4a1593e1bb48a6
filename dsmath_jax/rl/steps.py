"""Splitting a solution into reasoning steps for process supervision (paper §4.1.3).

A step ends at the token that completes the delimiter (a newline by default, as in
Math-Shepherd and PRM800K, whose steps are lines). Steps holding only whitespace merge
into the next one, so blank lines never become steps. The process reward model scores a
step at its last token; the advantage of a token sums the rewards of the steps ending at
or after it (advantages.py).
"""


def split_text(text: str, delimiter: str = "\n") -> list[str]:
  """The step texts of a solution, each keeping its trailing delimiter; blank steps merged."""
  if not delimiter:
    raise ValueError("rl.step_delimiter must be a non-empty string")
  pieces = text.split(delimiter)
  steps, current = [], ""
  for index, piece in enumerate(pieces):
    current += piece + (delimiter if index < len(pieces) - 1 else "")
    if piece.strip():                      # a step needs text; blank lines join the next step
      steps.append(current)
      current = ""
  if current:                              # trailing blank text belongs to the last step
    if steps:
      steps[-1] += current
    elif current.strip():
      steps.append(current)
  return steps


def step_end_tokens(token_ids, tokenizer, delimiter: str = "\n") -> list[int]:
  """Index (inclusive) of the last token of each step of a response, in token order.

  Tokens are decoded one by one: a delimiter split across tokens ("\\n" + "\\n" for
  "\\n\\n") still ends the step at the token that completes it. The last step ends at the
  last token even without a trailing delimiter. An empty response has no steps.
  """
  if not delimiter:
    raise ValueError("rl.step_delimiter must be a non-empty string")
  ends, current = [], ""
  for index, token in enumerate(token_ids):
    current += tokenizer.decode([int(token)])
    text_start = len(current) - len(current.lstrip())     # blank lines before a step join it
    cut = current.find(delimiter, text_start) if current.strip() else -1
    if cut >= 0:
      if not ends or ends[-1] != index:     # one token may close only one step
        ends.append(index)
      current = current[cut + len(delimiter):]       # text after the delimiter starts the next step
  if current.strip() and (not ends or ends[-1] != len(token_ids) - 1):
    ends.append(len(token_ids) - 1)
  return ends


def prefixes(text: str, delimiter: str = "\n") -> list[str]:
  """The solution cut after each step: what Math-Shepherd completes from (§4.1.3 labels)."""
  steps = split_text(text, delimiter)
  return ["".join(steps[:i + 1]) for i in range(len(steps))]
