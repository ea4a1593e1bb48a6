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

# Template "chat": a template's user turn (its text between "User: " and "\n\nAssistant:") as the
# user's message, rendered by the checkpoint's own chat template (tokenizer.render_chat) instead of
# "User:/Assistant:", for bases trained on their chat format (Qwen2.5-Math, Llama-3 Instruct, SmolLM2).
# GRPO (rl/questions.py) and SFT (data/pipeline.py) read it from config.data.template = "chat".
CHAT = "chat"
_USER, _ASSISTANT = "User: ", "\n\nAssistant:"
CHAT_USER = COT[len(_USER):-len(_ASSISTANT)]     # "{question}\nPlease reason step by step, ..."

# Chinese questions (CMATH, MGSM-zh, Gaokao) get the Chinese instruction of DeepSeek-Math's
# evaluation code (`evaluation/run_subset_parallel.py: markup_question`).
ZH_TEMPLATES = {
    "cot": "User: {question}\n请通过逐步推理来解答问题，并把最终答案放置于\\boxed{{}}中。\n\nAssistant:",
    "tool": "User: {question}\n请结合自然语言和Python程序语言来解答问题，并把最终答案放置于\\boxed{{}}中。\n\nAssistant:",
}
ZH_TEMPLATES["program"] = ZH_TEMPLATES["tool"]


def render(question: str, template: str = "cot", language: str = "en") -> str:
  """The prompt for `question` under the named template ('cot', 'tool' or 'program'), with the
  instruction in `language` ('en' or 'zh')."""
  if template not in TEMPLATES:
    raise ValueError(f"unknown prompt template {template!r}; known: {sorted(TEMPLATES)}")
  if language not in ("en", "zh"):
    raise ValueError(f"prompt language must be 'en' or 'zh', got {language!r}")
  return (ZH_TEMPLATES if language == "zh" else TEMPLATES)[template].format(question=question.strip())


def user_message(question: str, template: str = "cot") -> str:
  """The user's turn of `template` ('cot', 'tool' or 'program') without "User: " and "Assistant:":
  the message a chat template wraps (template "chat")."""
  return render(question, template)[len(_USER):-len(_ASSISTANT)]
