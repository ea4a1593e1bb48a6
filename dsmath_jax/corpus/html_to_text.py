"""HTML -> plain text that keeps the mathematics (paper §2.1: math web pages are only useful with their formulas).

Common extractors (trafilatura, WET conversion) drop MathJax/KaTeX/MathML and so destroy the very text the
classifier should learn from. This parser keeps:
  - MathJax v2 `<script type="math/tex[; mode=display]">` -> `$...$` / `$$...$$`;
  - `<math>` (MathML, also inside KaTeX): its `<annotation encoding="application/x-tex">` when present, else a
    best-effort MathML -> LaTeX conversion (mi/mn/mo/mrow/mfrac/msup/msub/msubsup/msqrt/mroot/mover/munder);
  - KaTeX's visual duplicate (`.katex-html`) and MathJax's rendered output (`.MathJax`, `mjx-container` without
    a MathML child) are dropped, so formulas are not repeated as garbled glyphs;
  - inline `$...$`, `\\(...\\)`, `\\[...\\]` written in the page text survive as they are.
Boilerplate containers (nav, script, style, footer, header, aside, form, noscript, template, svg) are dropped.
Pure stdlib (html.parser), so Common Crawl workers need no C extension.

Work and memory per page are bounded: a formula nested deeper than `max_depth` MathML elements (the LaTeX
conversion recurses once per level) or holding more than MAX_MATH_ELEMENTS elements (its tree is kept until
</math>: ~0.5 KB per element) raises TooComplex, and the reader skips the page and counts the reason; dropped
boilerplate tracks at most `max_depth` open elements (a <nav> with a million unclosed <li> costs nothing).
"""
import html.parser
import re

_DROP = {"script", "style", "nav", "footer", "header", "aside", "noscript", "template", "svg", "form",
         "select", "button", "iframe", "object", "canvas"}
_BLOCK = {"p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
          "blockquote", "section", "article", "dd", "dt", "dl", "hr", "main", "figure", "figcaption", "td",
          "th", "title", "body", "html", "center"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
         "track", "wbr"}
_DROP_CLASSES = ("katex-html", "mathjax_preview", "mjx-chtml", "mathjax_chtml", "mathjax_svg")
_MO_LATEX = {"∑": r"\sum ", "∫": r"\int ", "∏": r"\prod ", "≤": r"\le ", "≥": r"\ge ", "≠": r"\neq ",
             "±": r"\pm ", "×": r"\times ", "·": r"\cdot ", "→": r"\to ", "∞": r"\infty ", "∈": r"\in ",
             "−": "-", "⋅": r"\cdot ", "∂": r"\partial ", "√": r"\sqrt "}
_MI_LATEX = {"α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta", "ε": r"\epsilon",
             "θ": r"\theta", "λ": r"\lambda", "μ": r"\mu", "π": r"\pi", "σ": r"\sigma", "φ": r"\phi",
             "ω": r"\omega", "Δ": r"\Delta", "Σ": r"\Sigma", "Ω": r"\Omega"}
MAX_DEPTH = 128              # deepest MathML nesting converted (real formulas: under 30)
MAX_MATH_ELEMENTS = 10_000   # elements in one <math> (real formulas: a few hundred)
# Runs of horizontal space that are not already one " " (matching single spaces too would cost re.sub a piece
# per word: ~20 bytes of memory per byte of prose).
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]{2,}|[\t\r\f\v\u00a0]")
_BLANKS = re.compile(r"\n\s*\n+")
_LINE_EDGES = re.compile(r"[^\S\n]*\n[^\S\n]*")     # what str.strip() removes around each line break
_JOIN_EVERY = 4096                                   # pieces of text joined into one string (memory: see emit)


class TooComplex(Exception):
  """A page over a structure limit; `reason` is html_too_deep or mathml_too_large. Not a ValueError, which
  html_to_text swallows as html.parser's giving up."""

  def __init__(self, reason: str, message: str):
    super().__init__(message)
    self.reason = reason


class _MathNode:
  """A MathML element, kept as a small tree until </math> so it can be converted as a whole."""

  def __init__(self, tag, attrs):
    self.tag, self.attrs, self.children = tag, attrs, []


def mathml_to_latex(node) -> str:
  """Best-effort LaTeX for a MathML tree (the annotation is preferred when the page has one)."""
  if isinstance(node, str):
    text = node.strip()
    return "".join(_MO_LATEX.get(ch, _MI_LATEX.get(ch, ch)) for ch in text)
  kids = [k for k in node.children if not (isinstance(k, str) and not k.strip())]
  parts = [mathml_to_latex(k) for k in kids]
  tag = node.tag
  if tag == "mfrac" and len(parts) == 2:
    return r"\frac{%s}{%s}" % tuple(parts)
  if tag == "msup" and len(parts) == 2:
    return "{%s}^{%s}" % tuple(parts)
  if tag == "msub" and len(parts) == 2:
    return "{%s}_{%s}" % tuple(parts)
  if tag in ("msubsup", "munderover") and len(parts) == 3:
    return "{%s}_{%s}^{%s}" % tuple(parts)
  if tag == "munder" and len(parts) == 2:
    return "{%s}_{%s}" % tuple(parts)
  if tag == "mover" and len(parts) == 2:
    return "{%s}^{%s}" % tuple(parts)
  if tag == "msqrt":
    return r"\sqrt{%s}" % "".join(parts)
  if tag == "mroot" and len(parts) == 2:
    return r"\sqrt[%s]{%s}" % (parts[1], parts[0])
  if tag == "mfenced":
    return "(" + ",".join(parts) + ")"
  if tag == "mtext":
    return r"\text{%s}" % "".join(parts)
  if tag == "mtable":
    return r"\begin{matrix}" + r" \\ ".join(parts) + r"\end{matrix}"
  if tag == "mtr":
    return " & ".join(parts)
  return "".join(parts)


class _Extractor(html.parser.HTMLParser):
  """Streaming HTML -> text; see the module docstring for what is kept."""

  def __init__(self, max_depth: int = MAX_DEPTH):
    super().__init__(convert_charrefs=True)
    self.max_depth = max_depth
    self.out = []                # text pieces, joined every _JOIN_EVERY into `joined`
    self.joined = []
    self.drop_depth = 0          # > 0 inside a dropped subtree
    self.drop_stack = []         # tags that opened dropped subtrees
    self.tex_script = None       # "inline" | "display" inside <script type="math/tex">
    self.tex_buffer = []
    self.math_stack = []         # open MathML nodes
    self.math_display = False
    self.annotation = None       # collecting a TeX annotation
    self.tex_from_annotation = None
    self.pre_depth = 0
    self.math_elements = 0       # elements in the open <math>

  def emit(self, piece: str):
    """Appends text; a page of many tiny pieces ("<b>ab</b>" x 100k) would cost ~60 bytes per piece kept as
    separate strings, so pieces are joined every _JOIN_EVERY."""
    self.out.append(piece)
    if len(self.out) >= _JOIN_EVERY:
      self.joined.append("".join(self.out))
      self.out = []

  def text(self) -> str:
    return "".join(self.joined) + "".join(self.out)

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if self.math_stack:
      if tag == "annotation" and "tex" in (attrs.get("encoding") or "").lower():
        self.annotation = []
      node = _MathNode(tag, attrs)
      self.math_stack[-1].children.append(node)
      self.math_elements += 1
      if self.math_elements > MAX_MATH_ELEMENTS:
        raise TooComplex("mathml_too_large", f"a MathML formula of more than {MAX_MATH_ELEMENTS} elements")
      if tag not in _VOID:
        if len(self.math_stack) >= self.max_depth:
          raise TooComplex("html_too_deep", f"MathML nested deeper than {self.max_depth} elements")
        self.math_stack.append(node)
      return
    if self.drop_depth:
      if tag not in _VOID and len(self.drop_stack) < self.max_depth:
        self.drop_stack.append(tag)
        self.drop_depth += 1
      return
    if tag == "math":
      self.math_stack = [_MathNode(tag, attrs)]
      self.math_elements = 0
      self.math_display = attrs.get("display") == "block" or attrs.get("mode") == "display"
      self.tex_from_annotation = None
      return
    if tag == "script":
      kind = (attrs.get("type") or "").lower()
      if kind.startswith("math/tex"):
        self.tex_script = "display" if "display" in kind else "inline"
        self.tex_buffer = []
        return
    classes = (attrs.get("class") or "").lower()
    if tag in _DROP or any(c in classes for c in _DROP_CLASSES) or attrs.get("aria-hidden") == "true" and \
        "katex" in classes:
      if tag not in _VOID:
        self.drop_stack.append(tag)
        self.drop_depth = 1
      return
    if tag in _BLOCK:
      self.emit("\n")
    if tag == "pre":
      self.pre_depth += 1

  def handle_startendtag(self, tag, attrs):
    self.handle_starttag(tag, attrs)
    if tag not in _VOID and (self.math_stack or self.drop_depth):
      self.handle_endtag(tag)

  def handle_endtag(self, tag):
    if self.math_stack:
      if tag == "annotation" and self.annotation is not None:
        self.tex_from_annotation = "".join(self.annotation).strip()
        self.annotation = None
      # Pop to the matching open element (tolerates unclosed children).
      for depth in range(len(self.math_stack) - 1, -1, -1):
        if self.math_stack[depth].tag == tag:
          if depth == 0:
            root = self.math_stack[0]
            self.math_stack = []
            latex = self.tex_from_annotation
            if not latex:
              latex = mathml_to_latex(_without_annotations(root)).strip()
            if latex:
              self.emit(("$$%s$$" if self.math_display else "$%s$") % latex)
          else:
            del self.math_stack[depth:]
          break
      return
    if self.drop_depth:
      if tag in self.drop_stack:
        while self.drop_stack:
          self.drop_depth -= 1
          if self.drop_stack.pop() == tag:
            break
        if not self.drop_stack:
          self.drop_depth = 0
      return
    if tag == "script" and self.tex_script:
      latex = "".join(self.tex_buffer).strip()
      if latex:
        self.emit(("$$%s$$" if self.tex_script == "display" else "$%s$") % latex)
      self.tex_script = None
      return
    if tag in _BLOCK:
      self.emit("\n")
    if tag == "pre":
      self.pre_depth = max(self.pre_depth - 1, 0)

  def handle_data(self, data):
    if self.math_stack:
      if self.annotation is not None:
        self.annotation.append(data)
      else:
        self.math_stack[-1].children.append(data)
      return
    if self.tex_script:
      self.tex_buffer.append(data)
      return
    if not self.drop_depth:
      # Source line breaks are spaces in HTML (except in <pre>); blocks make the real line breaks.
      self.emit(data if self.pre_depth else data.replace("\n", " "))


def _without_annotations(node):
  """The presentation part of a <math> tree (drops <annotation*>; unwraps <semantics>)."""
  kept = _MathNode(node.tag, node.attrs)
  for child in node.children:
    if isinstance(child, _MathNode):
      if child.tag.startswith("annotation"):
        continue
      child = _without_annotations(child)
    kept.children.append(child)
  return kept


def html_to_text(html_source: str, max_depth: int = MAX_DEPTH) -> str:
  """Visible text of an HTML page with its formulas as LaTeX; blank-line separated blocks, trimmed lines.
  Raises TooComplex for MathML nested deeper than `max_depth` elements or larger than MAX_MATH_ELEMENTS."""
  parser = _Extractor(max_depth)
  # After the last ">" no tag can end, and html.parser rescans the rest of the page from every "<" there
  # (quadratic: 100 KB of "</" took seconds); as text those are the same characters.
  last = html_source.rfind(">")
  if html_source.find("<", last + 1) >= 0:
    html_source = html_source[:last + 1] + html_source[last + 1:].replace("<", "&lt;")
  try:
    parser.feed(html_source)
    parser.close()
  except (AssertionError, ValueError):  # html.parser gives up on some broken markup; keep what it read
    pass
  except RecursionError:                # a max_depth set above what the interpreter's stack allows
    raise TooComplex("html_too_deep", f"MathML nesting beyond Python's recursion limit (max_depth {max_depth})") \
        from None
  # Per line: runs of spaces collapsed, the line stripped; then blank runs -> one blank line. Whole-text regexes
  # rather than a list of lines (a list of 1M short lines costs ~60 bytes each).
  text = _LINE_EDGES.sub("\n", _SPACES.sub(" ", parser.text()))
  return _BLANKS.sub("\n\n", text).strip()
