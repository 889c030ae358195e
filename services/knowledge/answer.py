"""Grounded answers: extractive (passages and citations, no LLM) or generated with inline [n] citations.

An extractive answer leads with the sentences of the cited passages that are most like the
question (:func:`lead_sentences`), then quotes the passages, then lists the sources. The
citation check reads every ``[n]`` of a generated answer: a number that names no source given
to the model, or an answer that cites nothing, is flagged in the response metadata.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from runtime.knowledge.base import SearchHit

NO_ANSWER = "I found nothing in the knowledge base that answers this question."
_CITE = re.compile(r"\[(\d{1,3})\]")
QUOTE_CHARS = 300
SENTENCE_CHARS = 400
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
MIN_SENTENCE_WORDS = 4


def no_documents(default_collection: str) -> str:
    return (
        "No documents have been ingested yet, so there is nothing to answer from. Add some with "
        f"`switchboard ingest PATH` (they go to the collection '{default_collection}'; "
        "`--collection NAME` picks another)."
    )


def no_collection(name: str, available: Sequence[str]) -> str:
    there = f" The collections that exist: {', '.join(available)}." if available else " No collection exists yet."
    return (
        f"There is no collection named '{name}': no documents were ingested into it. "
        f"Add some with `switchboard ingest PATH --collection {name}`.{there}"
    )


@dataclass(frozen=True, slots=True)
class CitationCheck:
    cited: list[int]
    invalid: list[int]

    @property
    def ok(self) -> bool:
        return bool(self.cited) and not self.invalid

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "cited": self.cited, "invalid": self.invalid}


def source_dict(n: int, collection: str, hit: SearchHit) -> dict[str, Any]:
    p = hit.payload
    quote = hit.text if len(hit.text) <= QUOTE_CHARS else hit.text[: QUOTE_CHARS - 1].rstrip() + "…"
    return {
        "n": n,
        "collection": collection,
        "document_id": p.get("document_id", ""),
        "chunk_id": hit.id,
        "source_uri": p.get("source_uri", ""),
        "title": p.get("title", ""),
        "section_path": list(p.get("section_path") or []),
        "page": p.get("page"),
        "start_offset": p.get("start_offset", 0),
        "end_offset": p.get("end_offset", 0),
        "quote": quote,
        "score": round(hit.score, 6),
        "relevance": round(hit.relevance, 4),
    }


def where(source: dict[str, Any]) -> str:
    parts = [str(source["source_uri"] or source["title"])]
    if source["section_path"]:
        parts.append(" > ".join(source["section_path"]))
    if source["page"]:
        parts.append(f"page {source['page']}")
    return ", ".join(parts)


def sentences(text: str) -> list[str]:
    """The sentences of a passage: lines, split further after a full stop; headings and fragments left out."""
    out = []
    for line in text.splitlines():
        for piece in _SENTENCE_END.split(line.strip()):
            piece = piece.strip()
            if len(piece.split()) >= MIN_SENTENCE_WORDS:
                out.append(piece if len(piece) <= SENTENCE_CHARS else piece[: SENTENCE_CHARS - 1].rstrip() + "…")
    return out


def lead_sentences(
    question: str,
    passages: Sequence[tuple[int, str, float]],
    terms: Callable[[str], set[int]],
    count: int = 2,
) -> list[tuple[int, str]]:
    """The ``count`` sentences of ``passages`` ((source number, text, relevance), best first) most like the question.

    A sentence scores the share of the question's terms it holds (``terms`` gives a text's
    stemmed terms, stop words left out, as the sparse index sees them), each weighted by how rare
    it is among the candidate sentences, plus its passage's cosine to the question, so that among
    sentences that match alike the one from the passage closest in meaning wins. A question that
    shares no term with any sentence (a paraphrase) gets the first sentence of the best passage.
    Ties go to the better passage, then the earlier sentence.
    """
    if count <= 0:
        return []
    wanted = terms(question)
    candidates = [
        (n, rank, pos, text, terms(text), relevance)
        for rank, (n, passage, relevance) in enumerate(passages)
        for pos, text in enumerate(sentences(passage))
    ]
    if not candidates:
        return []
    df: dict[int, int] = {}
    for c in candidates:
        for term in c[4] & wanted:
            df[term] = df.get(term, 0) + 1
    idf = {t: math.log(1.0 + len(candidates) / n) for t, n in df.items()}
    mass = sum(idf.values())

    def score(c: tuple[int, int, int, str, set[int], float]) -> float:
        matched = c[4] & wanted
        return sum(idf[t] for t in matched) / mass + c[5] if matched else 0.0

    scored = sorted(((score(c), c) for c in candidates), key=lambda sc: (-sc[0], sc[1][1], sc[1][2]))
    best = [c for s, c in scored if s > 0][:count]
    if not best:
        best = [min(candidates, key=lambda c: (c[1], c[2]))]
    return [(c[0], c[3]) for c in best]


def extractive(sources: Sequence[dict[str, Any]], passages: int = 3, lead: Sequence[tuple[int, str]] = ()) -> str:
    """The lead sentences (each cited), the best passages quoted with their numbers, then the sources."""
    parts = []
    if lead:
        parts.append(" ".join(f"{text} [{n}]" for n, text in lead))
    parts += [f"> {s['quote']} [{s['n']}]" if lead else f"{s['quote']} [{s['n']}]" for s in sources[:passages]]
    refs = [f"[{s['n']}] {where(s)}" for s in sources]
    return "\n\n".join(parts) + "\n\nSources:\n" + "\n".join(refs)


def context_block(sources: Sequence[dict[str, Any]], texts: Sequence[str], budget_chars: int) -> str:
    """Numbered sources for the prompt, whole passages only, within the model's budget."""
    out: list[str] = []
    used = 0
    for source, text in zip(sources, texts, strict=True):
        block = f"[{source['n']}] ({where(source)})\n{text}"
        if out and used + len(block) > budget_chars:
            break
        out.append(block)
        used += len(block)
    return "\n\n".join(out)


def check_citations(answer: str, given: int) -> CitationCheck:
    numbers = [int(n) for n in _CITE.findall(answer)]
    cited = sorted({n for n in numbers if 1 <= n <= given})
    invalid = sorted({n for n in numbers if not 1 <= n <= given})
    return CitationCheck(cited, invalid)


SYSTEM_PROMPT = (
    "Answer the question using only the numbered sources below. Cite every claim with the number of its "
    "source in square brackets, like [1]. If the sources do not answer the question, say so."
)
