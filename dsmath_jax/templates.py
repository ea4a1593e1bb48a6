"""Prompt templates shared by SFT, RL and evaluation, so the three agree byte for byte.

The two DeepSeekMath-Instruct templates (paper §3.1 and its evaluation code):
chain-of-thought and tool-integrated reasoning. Both end with "Assistant:" and the
response starts right after it (a leading space is part of the response).
"""

COT = ("User: {question}\nPlease reason step by step, "
       "and put your final answer within \\boxed{{}}.\n\nAssistant:")

TOOL = ("User: {question}\nPlease integrate natural language reasoning with programs to solve "
        "the problem above, and put your final answer within \\boxed{{}}.\n\nAssistant:")

# Program-of-thought records use the tool-integrated prompt: the response is a program
# whose execution output ends the solution.
TEMPLATES = {"cot": COT, "tool": TOOL, "program": TOOL}


def render(question: str, template: str = "cot") -> str:
  """The prompt for `question` under the named template ('cot', 'tool' or 'program')."""
  if template not in TEMPLATES:
    raise ValueError(f"unknown prompt template {template!r}; known: {sorted(TEMPLATES)}")
  return TEMPLATES[template].format(question=question.strip())
