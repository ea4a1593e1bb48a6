"""Stage 4 helpers: URL path prefixes, the review file a human edits, and marked-prefix matching."""
import pytest

from dsmath_jax.corpus import domains


def test_domain_and_path_prefix():
  assert domains.domain_of("https://www.MathOverflow.net/questions/1/x") == "mathoverflow.net"
  assert domains.path_prefix("https://mathoverflow.net/questions/1/title") == "mathoverflow.net/questions/"
  assert domains.path_prefix("http://localhost:8000/math.html") == "localhost:8000/"    # a page, not a folder
  assert domains.domain_of("729d4d16-6348-46f2-823c") == ""                              # ids are not URLs


def test_review_file_round_trip(tmp_path):
  pages = [{"id": str(i), "url": f"https://mathoverflow.net/questions/{i}"} for i in range(8)]
  pages += [{"id": f"u{i}", "url": f"https://mathoverflow.net/users/{i}"} for i in range(4)]
  pages += [{"id": f"b{i}", "url": f"https://blog.example.com/post/{i}"} for i in range(20)]
  collected = {str(i) for i in range(6)} | {"b0"}
  table = domains.domain_table(pages, collected)
  assert table["mathoverflow.net"]["paths"] == {"mathoverflow.net/questions/": [8, 6],
                                                "mathoverflow.net/users/": [4, 0]}
  chosen = domains.math_domains(table, 0.10)
  assert chosen == ["mathoverflow.net"]                                                  # blog: 1/20 = 5%
  path = tmp_path / "review.txt"
  domains.write_review(str(path), 1, table, chosen, 0.10)
  text = path.read_text()
  assert "#? mathoverflow.net/questions/" in text and domains.read_review(str(path)) == []
  path.write_text(text.replace("#? mathoverflow.net/questions/", "+ mathoverflow.net/questions/"))
  assert domains.read_review(str(path)) == ["mathoverflow.net/questions/"]
  marked = ["mathoverflow.net/questions/"]
  assert domains.url_matches("https://www.mathoverflow.net/questions/77?tab=votes", marked)
  assert not domains.url_matches("https://mathoverflow.net/users/3", marked)
  assert not domains.url_matches("https://mathoverflow.net.evil.com/questions/1", marked)


def test_bad_review_line_names_file_and_line(tmp_path):
  path = tmp_path / "review.txt"
  path.write_text("# comment\n+ a.org/x/\nmathoverflow.net/questions/\n")
  with pytest.raises(ValueError, match=r"review.txt:3"):
    domains.read_review(str(path))
