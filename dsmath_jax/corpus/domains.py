"""Stage 4: math-domain discovery and the human review file that grows the seed (paper §2.1, iterations).

After a round, each domain's share of pages collected is computed over the whole (deduplicated) pool; domains
with more than `min_fraction` (paper: 10%) are math-related. They are written to a review file with sample URLs
and the URL path prefixes under them. A human marks the prefixes that hold math (e.g. `mathoverflow.net/questions/`)
by turning `#? prefix` lines into `+ prefix` lines; the next round adds the uncollected pages under marked prefixes
to the positives, retrains and rescores.
"""
import urllib.parse

from dsmath_jax.corpus import dedup

REVIEW_HEADER = """\
# Math-related domains after round {round} (paper §2.1): more than {fraction:.0%} of their pages collected.
# To grow the seed, mark URL path prefixes whose pages are math: change a `#? host/path/` line into
# `+ host/path/` (or add your own `+ host/path/` lines). The next round adds the pages under marked prefixes
# that this round did not collect to the positives. Lines starting with `#` are ignored.
"""


def domain_of(url: str) -> str:
  """Host without `www.` (empty for records whose url is not a URL)."""
  normalized = dedup.normalize_url(url)
  if "://" not in normalized:
    return ""
  return urllib.parse.urlsplit(normalized).netloc


def path_prefix(url: str, depth: int = 1) -> str:
  """`host/first-segment/` of a URL, the unit a human marks (`mathoverflow.net/questions/`)."""
  normalized = dedup.normalize_url(url)
  if "://" not in normalized:
    return ""
  parts = urllib.parse.urlsplit(normalized)
  segments = [s for s in parts.path.split("/")[1:-1] if s][:depth]     # directories, not the page itself
  return parts.netloc + "/" + "".join(s + "/" for s in segments)


def url_matches(url: str, prefixes) -> bool:
  """Whether `host/path` of the URL starts with one of the marked prefixes."""
  normalized = dedup.normalize_url(url)
  if "://" not in normalized:
    return False
  parts = urllib.parse.urlsplit(normalized)
  location = parts.netloc + (parts.path if parts.path.endswith("/") else parts.path + "/")
  return any(location.startswith(prefix) for prefix in prefixes)


def domain_table(pages, collected_ids) -> dict:
  """domain -> {"total", "collected", "fraction", "samples" (<= 5 collected URLs), "paths" {prefix: [total,
  collected]}} over every page of the pool; `pages` yields dicts with url and id."""
  table = {}
  for page in pages:
    domain = domain_of(page["url"])
    if not domain:
      continue
    row = table.setdefault(domain, {"total": 0, "collected": 0, "samples": [], "paths": {}})
    is_collected = page["id"] in collected_ids
    row["total"] += 1
    path = row["paths"].setdefault(path_prefix(page["url"]), [0, 0])
    path[0] += 1
    if is_collected:
      row["collected"] += 1
      path[1] += 1
      row["samples"].append(page["url"])
  for row in table.values():
    row["fraction"] = row["collected"] / row["total"]
    row["samples"] = sorted(row["samples"])[:5]
  return dict(sorted(table.items()))


def math_domains(table: dict, min_fraction: float = 0.10, min_pages: int = 1) -> list[str]:
  """Domains with more than `min_fraction` of their (at least `min_pages`) pages collected, most collected first."""
  chosen = [d for d, row in table.items() if row["total"] >= min_pages and row["fraction"] > min_fraction]
  return sorted(chosen, key=lambda d: (-table[d]["collected"], d))


def write_review(path: str, round_index: int, table: dict, domains: list[str], min_fraction: float):
  """Writes the human review file for `domains` (see module docstring)."""
  lines = [REVIEW_HEADER.format(round=round_index, fraction=min_fraction)]
  for domain in domains:
    row = table[domain]
    lines.append(f"## {domain}  collected {row['collected']}/{row['total']} pages ({row['fraction']:.1%})")
    lines += [f"#   sample: {url}" for url in row["samples"]]
    for prefix, (total, collected) in sorted(row["paths"].items(), key=lambda kv: (-kv[1][1], kv[0])):
      lines.append(f"#? {prefix}    # collected {collected}/{total}")
    lines.append("")
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(lines))


def read_review(path: str) -> list[str]:
  """The prefixes marked `+ host/path/` in a review file (errors name the file and line)."""
  prefixes = []
  with open(path, encoding="utf-8") as f:
    for line_number, line in enumerate(f, 1):
      line = line.split("#", 1)[0].strip()
      if not line:
        continue
      if not line.startswith("+"):
        raise ValueError(f"{path}:{line_number}: expected `+ host/path/` or a `#` comment, got {line!r}")
      prefix = line[1:].strip().lower()
      if prefix.startswith("www."):
        prefix = prefix[4:]
      if "/" not in prefix:
        prefix += "/"
      prefixes.append(prefix)
  return prefixes
