"""Build the man-page retrieval set's corpus from the manual pages installed on this machine.

``python -m bench.manpages [--out bench/data/manpages] [--man /usr/share/man]`` writes
``corpus.jsonl``: one BEIR document per section-1 page whose name is a plain word (``ls``,
``tar``, ``make``; 2-10 letters or digits), its id the command's name, no title (BEIR leaves
it empty when a corpus has none) and, as its text, the page rendered by groff as plain text
from NAME on, up to the first :data:`MAX_CHARS` characters: the page's first chunk, which
holds its name line and the start of its description.

The queries, judgements and out-of-scope questions beside it were written by hand for this
repository. The corpus is not committed: its text is the installed pages' own, under their
authors' licences, so each machine builds it (``make bench-retrieval`` runs this module first; it takes
a few seconds). Built on another machine, a page missing there drops the queries judged on it
(the evaluation only runs judged queries whose documents exist), so figures are comparable only
on the same set of pages: the corpus's size is printed and recorded in each evaluation's output.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

MAX_CHARS = 1200
"""The knowledge base's chunk size (``runtime/knowledge/chunking.py``): a page's first chunk."""
NAME = re.compile(r"^[a-z][a-z0-9]{1,9}\.1\.gz$")
HERE = Path(__file__).resolve().parent / "data" / "manpages"


def render(page: Path, max_chars: int = MAX_CHARS) -> str:
    """The page as plain text (no hyphenation, long lines), from NAME on; "" for a ``.so`` alias."""
    source = gzip.decompress(page.read_bytes())
    if source.lstrip().startswith(b".so "):
        return ""
    out = subprocess.run(
        ["groff", "-man", "-Tutf8", "-rHY=0", "-rLL=300n", "-P-cbou"],
        input=source,
        capture_output=True,
        timeout=30,
        check=False,
    ).stdout.decode("utf-8", "replace")
    lines = [line.rstrip() for line in out.splitlines()]
    start = next((i for i, line in enumerate(lines) if line.strip() == "NAME"), None)
    if start is None:
        return ""
    body = lines[start:]
    # The running footer (version, date, page name) repeats the header's facts: drop it.
    text = "\n".join(line.strip() for line in body[:-1] if line.strip())
    return text[:max_chars]


def build(man: Path, titled: bool = False, max_chars: int = MAX_CHARS) -> list[dict[str, str]]:
    """One document per page; aliases (symbolic links, ``.so`` pages, identical text) are left out.

    ``titled`` gives each page its name as title, as ``switchboard ingest`` of a folder of pages
    would (a file's title is its name): what measures the contextual chunk headers here.
    """
    docs = []
    seen: set[str] = set()
    for page in sorted((man / "man1").iterdir()):
        if not NAME.match(page.name) or page.is_symlink():
            continue
        text = render(page, max_chars)
        if text and text not in seen:
            seen.add(text)
            name = page.name.split(".")[0]
            docs.append({"_id": name, "title": name if titled else "", "text": text})
    return docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(HERE), help="dataset directory (queries and qrels are kept)")
    parser.add_argument("--man", default="/usr/share/man", help="root of the installed manual pages")
    parser.add_argument(
        "--titled", action="store_true", help="title each page with its name (also copies the queries and judgements)"
    )
    parser.add_argument(
        "--max-chars",
        type=int,
        default=MAX_CHARS,
        help="text kept per page (default: one chunk; more makes documents that ingestion splits, "
        "for eval retrieval --chunked)",
    )
    args = parser.parse_args(argv)
    docs = build(Path(args.man), titled=args.titled, max_chars=args.max_chars)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() != HERE:
        for name in ("queries.jsonl", "out_of_scope.jsonl", "qrels/test.tsv"):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_text((HERE / name).read_text())
    with (out / "corpus.jsonl").open("w") as f:
        for doc in docs:
            f.write(json.dumps(doc) + "\n")
    print(f"{len(docs)} pages -> {out / 'corpus.jsonl'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
