"""Grounded answers: extractive (passages and citations, no LLM) or generated with inline [n] citations.

The citation check reads every ``[n]`` of a generated answer: a number that names no source given
to the model, or an answer that cites nothing, is flagged in the response metadata.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runtime.knowledge.base import SearchHit

NO_ANSWER = "I found nothing in the knowledge base that answers this question."
_CITE = re.compile(r"\[(\d{1,3})\]")
QUOTE_CHARS = 300


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


def extractive(sources: Sequence[dict[str, Any]], passages: int = 3) -> str:
    lines = [f"{s['quote']} [{s['n']}]" for s in sources[:passages]]
    refs = [f"[{s['n']}] {where(s)}" for s in sources]
    return "\n\n".join(lines) + "\n\nSources:\n" + "\n".join(refs)


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
