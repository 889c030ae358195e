"""Structure-aware chunks: paragraphs are packed up to ``max_chars`` within one section, never across
a heading change; a paragraph longer than that is cut at sentence or word boundaries; consecutive
chunks of one section share ``overlap`` characters. Offsets point into the extracted text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.knowledge.documents import Block, ParsedDocument

MAX_CHARS = 1200
OVERLAP = 150


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    text: str
    start: int
    end: int
    section_path: tuple[str, ...]
    page: int | None


def chunk(doc: ParsedDocument, max_chars: int = MAX_CHARS, overlap: int = OVERLAP) -> list[Chunk]:
    max_chars = max(200, max_chars)
    overlap = max(0, min(overlap, max_chars // 2))
    pieces: list[Block] = []
    for block in doc.blocks:
        pieces += _split(block, max_chars)
    chunks: list[Chunk] = []
    group: list[Block] = []

    def emit() -> None:
        if not group:
            return
        start, end = group[0].start, group[-1].end
        chunks.append(Chunk(len(chunks), doc.text[start:end], start, end, group[0].section_path, group[0].page))

    for piece in pieces:
        same = group and piece.section_path == group[0].section_path and piece.page == group[0].page
        if group and (not same or piece.end - group[0].start > max_chars):
            emit()
            carry = _overlap_block(doc.text, group[-1], overlap) if same else None
            group = [carry] if carry is not None and piece.end - carry.start <= max_chars else []
        group.append(piece)
    emit()
    return chunks


def _overlap_block(text: str, last: Block, overlap: int) -> Block | None:
    if overlap <= 0 or last.end - last.start <= overlap:
        return None
    start = last.end - overlap
    space = text.find(" ", start, last.end)
    start = space + 1 if space != -1 else start
    return Block(text[start : last.end], start, last.end, last.section_path, last.page)


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _split(block: Block, max_chars: int) -> list[Block]:
    if block.end - block.start <= max_chars:
        return [block]
    out: list[Block] = []
    text, base = block.text, block.start
    pos = 0
    while pos < len(text):
        end = min(len(text), pos + max_chars)
        if end < len(text):
            window = text[pos:end]
            cut = max((m.end() for m in _SENTENCE.finditer(window)), default=0)
            if cut < max_chars // 3:
                cut = window.rfind(" ") + 1 or len(window)
            end = pos + cut
        piece = text[pos:end].rstrip()
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            out.append(Block(piece.strip(), base + pos + lead, base + pos + len(piece), block.section_path, block.page))
        pos = end
    return out
