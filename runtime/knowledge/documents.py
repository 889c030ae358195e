"""Documents to text with structure: Markdown, plain text, HTML and PDF (pypdf).

Each parser yields the document's extracted text and its *blocks*: paragraphs (or headings'
sections' paragraphs) with the headings above them, the page they sit on and their character
offsets in the extracted text. Chunking (``chunking.py``) works on blocks, so chunks keep all of it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import PurePosixPath

from runtime.errors import DocumentRejectedError

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
MEDIA_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".text": "text/plain",
    ".rst": "text/plain",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}


@dataclass(frozen=True, slots=True)
class Block:
    text: str
    start: int
    end: int
    section_path: tuple[str, ...] = ()
    page: int | None = None


@dataclass(slots=True)
class ParsedDocument:
    title: str
    text: str = ""
    blocks: list[Block] = field(default_factory=list)

    def add(self, text: str, section: tuple[str, ...], page: int | None = None) -> None:
        text = text.strip()
        if not text:
            return
        if self.text:
            self.text += "\n\n"
        start = len(self.text)
        self.text += text
        self.blocks.append(Block(text, start, len(self.text), section, page))


def media_type_for(path: str) -> str | None:
    return MEDIA_TYPES.get(PurePosixPath(path.lower()).suffix)


def parse(data: bytes, media_type: str, source: str) -> ParsedDocument:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentRejectedError(f"{source}: {len(data)} bytes is over the {MAX_DOCUMENT_BYTES} byte limit")
    if media_type == "application/pdf":
        return _pdf(data, source)
    text = _text(data, source)
    if media_type == "text/html":
        return _html(text, source)
    if media_type == "text/markdown":
        return _markdown(text, source)
    return _plain(text, source)


def parse_text(text: str, media_type: str, source: str) -> ParsedDocument:
    return parse(
        text.encode("utf-8", "surrogatepass"), media_type if media_type != "application/pdf" else "text/plain", source
    )


def _text(data: bytes, source: str) -> str:
    if b"\x00" in data[:8192]:
        raise DocumentRejectedError(f"{source}: binary content (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentRejectedError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _default_title(source: str) -> str:
    return PurePosixPath(source).stem.replace("_", " ").replace("-", " ").strip() or source


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _markdown(text: str, source: str) -> ParsedDocument:
    doc = ParsedDocument(title="")
    path: list[str] = []
    para: list[str] = []
    fenced = False

    def flush() -> None:
        doc.add("\n".join(para), tuple(path))
        para.clear()

    for line in text.splitlines():
        if line.strip().startswith("```"):
            fenced = not fenced
            para.append(line)
            continue
        heading = None if fenced else _HEADING.match(line)
        if heading:
            flush()
            level, title = len(heading.group(1)), heading.group(2).strip()
            del path[level - 1 :]
            path.extend([""] * (level - 1 - len(path)))
            path.append(title)
            if not doc.title and level == 1:
                doc.title = title
            continue
        if not line.strip() and not fenced:
            flush()
            continue
        para.append(line)
    flush()
    doc.title = doc.title or _default_title(source)
    for i, b in enumerate(doc.blocks):
        doc.blocks[i] = Block(b.text, b.start, b.end, tuple(s for s in b.section_path if s), b.page)
    return doc


def _plain(text: str, source: str) -> ParsedDocument:
    doc = ParsedDocument(title=_default_title(source))
    for para in re.split(r"\n\s*\n", text):
        doc.add(para, ())
    return doc


class _HtmlText(HTMLParser):
    BLOCKS = frozenset(
        {"p", "div", "li", "pre", "blockquote", "td", "th", "section", "article", "br", "tr", "dd", "dt"}
    )
    SKIP = frozenset({"script", "style", "noscript", "template", "head"})

    def __init__(self, doc: ParsedDocument) -> None:
        super().__init__(convert_charrefs=True)
        self.doc = doc
        self.path: list[str] = []
        self.buf: list[str] = []
        self.heading: int | None = None
        self.skip = 0
        self.in_title = False
        self.title = ""

    def flush(self) -> None:
        text = " ".join("".join(self.buf).split())
        self.buf.clear()
        if self.heading is not None:
            del self.path[self.heading - 1 :]
            self.path.extend([""] * (self.heading - 1 - len(self.path)))
            self.path.append(text)
            if not self.doc.title and text:
                self.doc.title = text
        else:
            self.doc.add(text, tuple(s for s in self.path if s))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        if tag in self.SKIP:
            self.skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.flush()
            self.heading = int(tag[1])
        elif tag in self.BLOCKS:
            self.flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif re.fullmatch(r"h[1-6]", tag):
            self.flush()
            self.heading = None
        elif tag in self.BLOCKS:
            self.flush()

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
        if not self.skip:
            self.buf.append(data)


def _html(text: str, source: str) -> ParsedDocument:
    doc = ParsedDocument(title="")
    parser = _HtmlText(doc)
    parser.feed(text)
    parser.close()
    parser.flush()
    doc.title = " ".join(parser.title.split()) or doc.title or _default_title(source)
    return doc


def _pdf(data: bytes, source: str) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentRejectedError(f"{source}: encrypted PDF")
        doc = ParsedDocument(title="")
        meta = reader.metadata
        if meta is not None and meta.title:
            doc.title = str(meta.title).strip()
        for number, page in enumerate(reader.pages, start=1):
            for para in re.split(r"\n\s*\n", page.extract_text() or ""):
                doc.add(" ".join(para.split()), (), number)
    except DocumentRejectedError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AssertionError) as exc:
        raise DocumentRejectedError(f"{source}: malformed PDF ({exc})") from exc
    if not doc.blocks:
        raise DocumentRejectedError(f"{source}: no extractable text in the PDF")
    doc.title = doc.title or _default_title(source)
    return doc
