"""Final-answer extraction and normalization on hand-written model outputs (expected values by hand)."""
import pytest

from dsmath_jax.grading import answer, normalize

EXTRACT_CASES = [
    # last \boxed{}, nested braces, \fbox, "\boxed 5", a percent after the box
    ("So the answer is $\\boxed{5}$.", "5"),
    ("First $\\boxed{3}$, then corrected: $\\boxed{4}$.", "4"),
    ("$\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}"),
    ("$\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    ("$\\boxed{\\{1, 2\\}}$", "\\{1, 2\\}"),
    ("The result is \\fbox{12}.", "12"),
    ("Hence $\\boxed 5$.", "5"),
    ("Hence \\boxed 7", "7"),
    ("We get $\\boxed{50}\\%$ of them.", "50%"),
    ("\\boxed{ 2x + 1 }", "2x + 1"),
    ("$\\boxed{\\text{Evelyn}}$", "\\text{Evelyn}"),
    # an unterminated box (a cut-off generation) is skipped: the earlier complete one counts
    ("$\\boxed{7}$ ... finally \\boxed{\\frac{3", "7"),
    # "The answer is"
    ("The answer is 18.", "18"),
    ("so the answer is: 42", "42"),
    ("The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}"),
    ("Thus the answer is $x = 5$.\nDone.", "x = 5"),
    ("The answer is 3.5. Next question follows.", "3.5"),
    ("The answer is 7 apples", "7 apples"),
    ("the answer is 1. The answer is 2.", "2"),
    # GSM8K "#### n"
    ("Janet sells 9 eggs.\nShe makes 9 * 2 = 18.\n#### 18", "18"),
    ("#### 1,200", "1,200"),
    ("step 1 ... #### 5\nmore text 7", "5"),
    # tool-integrated: the last program output when there is no box / answer line
    ("```python\nprint(2+2)\n```\n```output\n4\n```\n", "4"),
    ("```python\nx\n```\n```output\n3\n```\n```python\ny\n```\n```output\n9\n```", "9"),
    # last number fallback
    ("We have 3 apples and 5 pears, 8 in total", "8"),
    ("It costs $1,250 dollars", "1250"),
    ("temperature drops to -4 degrees", "-4"),
    ("about 0.75 of it", "0.75"),
    ("it is .5 now", ".5"),
    # nothing
    ("I do not know.", None),
    ("", None),
]


@pytest.mark.parametrize("text,expected", EXTRACT_CASES)
def test_extract_answer(text, expected):
  assert answer.extract_answer(text) == expected


def test_extract_answer_program_mode():
  text = "```python\nprint(3)\n```\n```output\n3\n```\nSo the answer is \\boxed{4}."
  assert answer.extract_answer(text) == "4"                    # the boxed answer
  assert answer.extract_answer(text, mode="program") == "3"    # program accuracy reads the output
  assert answer.extract_answer("no program here", mode="program") is None
  assert answer.extract_answer("```output\n12\n", mode="program") == "12"   # cut-off block
  with pytest.raises(ValueError, match="mode"):
    answer.extract_answer("x", mode="boxed")


def test_boxed_answers_lists_all_in_order():
  assert answer.boxed_answers("\\boxed{1} and \\boxed{{2}} and \\fbox{3}") == ["1", "{2}", "3"]
  assert answer.boxed_answers("\\boxedtext{1}") == []  # another command that starts with \boxed


NORMALIZE_CASES = [
    ("\\dfrac12", "\\frac{1}{2}"),
    ("\\frac1{72}", "\\frac{1}{72}"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
    ("10\\text{ cm}^2", "10"),
    ("\\text{Evelyn}", "Evelyn"),
    ("$18.00", "18"),
    ("\\$18", "18"),
    ("18 dollars", "18"),
    ("5.", "5"),
    (".5", "0.5"),
    ("-.25", "-0.25"),
    ("3/4", "\\frac{3}{4}"),
    ("90^\\circ", "90"),
    ("90^{\\circ}", "90"),
    ("50\\%", "50%"),
    ("\\sqrt2", "\\sqrt{2}"),
    ("2\\sqrt 12", "2\\sqrt{12}"),
    ("\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}"),
    ("\\begin{pmatrix}1\\\\ 2\\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("x \\in [1,2]", "[1,2]"),
    ("\\{1,2\\}", "{1,2}"),
    ("1,\\!000", "1,000"),
    ("1{,}000", "1,000"),
    ("k = 5", "k=5"),
    ("3 \\text{ and } 5", "3,5"),
    ("\\log_2 8", "\\log_{2}8"),
    ("2j", "2i"),
    ("(-inf, 2)", "(-\\infty,2)"),
    ("4210_5", "4210_{5}"),
    ("\\mathbf{v}", "{v}"),
    (None, ""),
]


@pytest.mark.parametrize("raw,expected", NORMALIZE_CASES)
def test_normalize(raw, expected):
  assert normalize.normalize(raw) == expected
  assert normalize.normalize(normalize.normalize(raw)) == normalize.normalize(raw)  # idempotent


@pytest.mark.parametrize("text,value", [
    ("5", 5.0), ("-3.5", -3.5), ("1,000", 1000.0), ("1,234.5", 1234.5), ("50%", 0.5), ("\\frac{3}{4}", 0.75),
    ("-\\frac{1}{2}", -0.5), ("3/4", 0.75), ("3\\frac{1}{2}", 3.5), ("1e3", 1000.0), ("1,2", None), ("x", None),
    ("\\frac{1}{0}", None), ("\\sqrt{2}", None)])
def test_parse_number(text, value):
  assert normalize.parse_number(text) == value


def test_hostile_outputs_stay_linear():
  # Each of these took seconds to hours with a backtracking regex or a rescan per "{"; all are
  # plausible degenerate generations (a repeated token), and they run in the grading parent.
  words = "5 " + "ab " * 40 + "!"
  assert normalize.normalize(words) == words.replace(" ", "")
  assert answer.extract_answer("\\boxed{" * 20000) is None           # no complete box, no number
  assert normalize.normalize("," * 20000 + "x") == "," * 20000 + "x"
  assert normalize.fix_fracs("\\frac{" * 20000) == "\\frac{" * 20000
  from dsmath_jax.grading import equivalence
  assert equivalence.quick_compare("1" * 5000, "1") == (False, "too long")


# The cases (hand-written outputs, expected answers by hand).
MARKER_CASES = [
    ("The roots are found.\nAnswer: (-6, 0)", "(-6, 0)"),                 # not the last number -60
    ("So x = 3.\n\n**Answer:** $(-6, 0)$", "(-6, 0)"),
    ("**Final Answer:** 12", "12"),
    ("Final answer: $\\frac{3}{4}$", "\\frac{3}{4}"),
    ("**Final Answer**\n\n$\\frac{1}{2}$", "\\frac{1}{2}"),
    ("# Answer\n\n5", "5"),                                              # PRM800K's format
    ("The answer is $\\$18.50$.", "\\$18.50"),                            # an escaped dollar inside math
    ("The answer is $x = \\$5$ exactly.", "x = \\$5"),
    ("It costs 3 dollars.\nThe answer is $18.", "$18"),                   # a currency sign, not math
    ("因此，所求的值为 5。\n所以答案是 $\\frac{1}{2}$。", "\\frac{1}{2}"),
    ("答案：12", "12"),
    ("故答案为 7", "7"),
    ("The answer is $5$ and $10$.", "$5$ and $10$"),                     # a list: the whole line
    ("The points are (-6, 0) and (6, 0)", "0"),                           # last number keeps the comma
    ("It costs $1,250 in total", "1250"),
    ("We found $\\boxed{3}$.\nAnswer: 4", "3"),                           # boxed first
]


@pytest.mark.parametrize("text,expected", MARKER_CASES)
def test_final_answer_markers(text, expected):
  assert answer.extract_answer(text) == expected


SAT_OPTIONS = {"A": "$f(-6)=0$", "B": "$f(6)=-6$", "C": "$f(-6)=6$", "D": "$f(0)=-6$"}


@pytest.mark.parametrize("text,expected", [
    ("The answer is (A) $f(-6)=0$.", "A"),
    ("Therefore the answer is $f(-6)=0$.", "A"),               # by the option's text
    ("**Answer:** C", "C"),
    ("$\\boxed{\\text{(D)}}$", "D"),
    ("答案是 D", "D"),
    ("经检验，选C。", "C"),
    ("The final answer is (B). I hope it is correct.", "B"),
    ("So option B is wrong and the answer is A) $f(-6)=0$", "A"),
    ("No idea.", None),
])
def test_choice_extraction(text, expected):
  from dsmath_jax.grading import choice
  assert choice.extract_choice(text, SAT_OPTIONS) == expected


def test_choice_multiple_answers_and_letter_texts():
  from dsmath_jax.grading import choice
  options = {"A": "2 km", "B": "2 cm", "C": "2 m", "D": "2 mm"}
  assert choice.extract_choice("The answer is 2 m.", options) == "C"      # not 2 km: all normalize to 2
  assert choice.extract_choice("答案是 AD", options) == "AD"
  assert choice.extract_choice("The answer is A, C and D.", options) == "ACD"
  assert choice.choice_equal("DA", "A D") and not choice.choice_equal("A", "AD")
  assert choice.paper_choice("答案是 A 或 C", "zh") == "C"                  # DeepSeek-Math: the last letter


@pytest.mark.parametrize("text,blanks,expected", [
    ("第一空 $\\boxed{5}$，第二空 $\\boxed{10}$", 2, ("5", "10")),
    ("答案是 $5$；$10$", 2, ("5", "10")),
    ("The answer is $5$ and $10$.", 2, ("5", "10")),
    ("答案是 $(0,1)$", 1, ("(0,1)",)),                                   # one blank: never split
    ("答案是 5", 2, None),
])
def test_cloze_blanks(text, blanks, expected):
  from dsmath_jax.grading import blanks as blanks_lib
  assert blanks_lib.extract_blanks(text, blanks) == expected
  assert blanks_lib.gold_blanks("$5$;$10$") == ("5", "10")
