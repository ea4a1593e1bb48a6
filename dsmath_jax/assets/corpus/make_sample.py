"""Rebuilds the shipped corpus sample from /work/shared/data/web (see SOURCE.md): python make_sample.py SHARED_DATA."""
import gzip
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main(data):
  web = os.path.join(data, "web")
  records = [json.loads(line) for line in open(os.path.join(web, "stackmathqa",
                                                             "stackmathqa100k_available_shards.jsonl"))]
  by_site = {}
  for record in records:
    by_site.setdefault(record["meta"]["url"].split("/")[2], []).append(record)
  short = lambda rs: [r for r in rs if len(r["Q"]) + len(r["A"]) < 2500]
  mathoverflow = short(by_site["mathoverflow.net"])
  seed = mathoverflow[:60]
  pool = mathoverflow[60:80] + short(by_site["stats.stackexchange.com"])[:30] + \
      short(by_site["physics.stackexchange.com"])[:30]
  with gzip.open(os.path.join(HERE, "seed.jsonl.gz"), "wt", encoding="utf-8") as f:
    for r in seed:
      f.write(json.dumps({"url": r["meta"]["url"], "text": r["Q"] + "\n\n" + r["A"]}, ensure_ascii=False) + "\n")
  cc = [json.loads(line) for line in gzip.open(os.path.join(
      web, "dolma_tests", "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"), "rt", encoding="utf-8")]
  cc = [r for r in cc if 200 < len(r["text"]) < 1800][:330]
  cc, random_pages = cc[:200], cc[200:]          # pool pages / random-page negatives (disjoint)
  with gzip.open(os.path.join(HERE, "random_pages.jsonl.gz"), "wt", encoding="utf-8") as f:
    for r in random_pages:
      f.write(json.dumps({"url": r["metadata"]["url"], "text": r["text"]}, ensure_ascii=False) + "\n")
  with gzip.open(os.path.join(HERE, "web.jsonl.gz"), "wt", encoding="utf-8") as f:
    for r in pool:
      f.write(json.dumps({"url": r["meta"]["url"], "text": r["Q"] + "\n\n" + r["A"]}, ensure_ascii=False) + "\n")
    for r in cc:
      f.write(json.dumps({"url": r["metadata"]["url"], "text": r["text"]}, ensure_ascii=False) + "\n")
  with open(os.path.join(HERE, "pages.warc.gz"), "wb") as out:   # gzip members concatenate into one WARC
    for name in ("dolma_tests/science_0.warc.gz", "dolma_tests/science_1.warc.gz",
                 "warcio_tests/example.warc.gz"):
      out.write(open(os.path.join(web, name), "rb").read())
  for name, path, keys in (("gsm8k_test_head.jsonl", "gsm8k/test.jsonl", ("question", "answer")),
                           ("math500_test_head.jsonl", "math/math500_test.jsonl", ("problem", "answer"))):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
      for line in list(open(os.path.join(data, path), encoding="utf-8"))[:40]:
        record = json.loads(line)
        f.write(json.dumps({k: record[k] for k in keys}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "shared", "data"))
