"""Query rewriting for retrieval, without an LLM: instruction wrappers off, known acronyms spelled out.

A question often arrives wrapped in words that are about the asking, not about the answer:
"Which command does the following: list files by size", "According to our docs, ...", "Can you
tell me how ...". Those words match documents that happen to contain them (BM25 weighs
"command" and "following" like any other term) and pull the question's embedding towards
every page that talks about commands. :func:`strip_wrappers` removes such a lead-in when what
is left is still a question of at least two words.

Acronyms are spelled out from a :class:`Glossary`: a file the operator keeps
(``SWITCHBOARD_KNOWLEDGE_GLOSSARY``, one ``ACRONYM: expansion`` per line) and the definitions
the documents give themselves ("Transport Layer Security (TLS)"), found at ingest
(:func:`defined_acronyms`). "TLS handshake" becomes "TLS (Transport Layer Security) handshake":
the acronym stays for the keyword match, the words help the embedding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import ConfigError

_TARGET = r"(?:commands?|tools?|programs?|utilit(?:y|ies)|options?|flags?|settings?|functions?|pages?|documents?)"
_SOURCE = (
    r"(?:docs|documentation|documents|handbook|manuals?|man pages?|wiki|knowledge[ -]base|runbooks?|"
    r"polic(?:y|ies)|guides?|notes|faq)"
)
_WRAPPERS = [
    # "Which command does the following: ...", "What tool can do this - ..."
    re.compile(
        rf"^(?:which|what)\s+{_TARGET}\s+(?:does|do|can|will|would|should|could)\s+(?:the following|this|that)"
        r"(?:\s+(?:task|thing|job))?\s*[:\-–—,]\s*",
        re.IGNORECASE,
    ),
    # "According to our docs, ...", "Based on the handbook: ..."
    re.compile(rf"^(?:according to|based on|using|from|in|per)\s+(?:our|the|my|your)\s+{_SOURCE}\s*[:,\-–—]\s*", re.I),
    # "Question: ...", "Answer the following question: ..."
    re.compile(r"^(?:(?:answer|respond to)\s+(?:the following|this)(?:\s+question)?|question|query|q)\s*:\s*", re.I),
    # "Can you tell me how ...", "Please explain what ..."
    re.compile(
        r"^(?:please\s+)?(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?)?"
        r"(?:tell me|explain(?:\s+to\s+me)?|find out|look up|let me know)\s*[:,]?\s+(?=\w)",
        re.IGNORECASE,
    ),
    re.compile(r"^(?:i\s+(?:want|would like|'d like|need)\s+to\s+know)\s*[:,]?\s+(?=\w)", re.IGNORECASE),
]
_TRAILER = re.compile(r"[\s,]*(?:please|thanks|thank you)[\s.!]*$", re.IGNORECASE)
_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]{1,7}s?\b")
# "Transport Layer Security (TLS)": capitalised or lower-case words, then the acronym in brackets.
_JOINING = frozenset({"of", "and", "for", "the", "a", "an", "to", "in", "on"})
_DEFINED = re.compile(r"((?:[A-Za-z][\w-]*\s+){1,7}[A-Za-z][\w-]*)\s*\(([A-Z][A-Z0-9]{1,7})s?\)")


def strip_wrappers(query: str) -> str:
    """``query`` without its instruction lead-in and trailing courtesy; unchanged when little would be left."""
    text = " ".join(query.split())
    for _ in range(3):  # "Question: according to our docs, ..." peels twice
        before = text
        for pattern in _WRAPPERS:
            text = pattern.sub("", text, count=1)
        if text == before:
            break
    text = _TRAILER.sub("", text)
    if len(text.split()) < 2:
        return " ".join(query.split())
    return text[0].upper() + text[1:] if text[0].islower() and query.strip()[:1].isupper() else text


def defined_acronyms(text: str) -> dict[str, str]:
    """Acronyms ``text`` defines as "Long Form (LF)": the words whose initials spell the acronym."""
    found: dict[str, str] = {}
    for match in _DEFINED.finditer(text):
        words, acronym = match.group(1).split(), match.group(2)
        letters = acronym.rstrip("0123456789")
        if len(letters) < 2:
            continue
        # As many trailing words as the acronym has letters, allowing one short joining word
        # ("Content Delivery Network", "Bureau of Labor Statistics").
        for count in (len(letters), len(letters) + 1):
            chosen = words[-count:]
            if len(chosen) != count or chosen[0].lower() in _JOINING:
                continue
            if "".join(w[0] for w in chosen if w.lower() not in _JOINING).upper() == letters:
                found.setdefault(acronym, " ".join(chosen))
                break
    return found


@dataclass(slots=True)
class Glossary:
    """Acronym -> expansion; the operator's file wins over what the documents define."""

    entries: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str) -> Glossary:
        if not path:
            return cls()
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"SWITCHBOARD_KNOWLEDGE_GLOSSARY={path!r} cannot be read: {exc}") from exc
        entries: dict[str, str] = {}
        for number, line in enumerate(lines, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition(":")
            if not sep or not key.strip() or not value.strip():
                raise ConfigError(f"{path}:{number}: write 'ACRONYM: expansion', got {line[:80]!r}")
            entries[key.strip()] = value.strip()
        return cls(entries)

    def merged(self, defined: Iterable[Mapping[str, str]]) -> Glossary:
        """This glossary with the documents' own definitions added beneath it."""
        entries: dict[str, str] = {}
        for more in defined:
            for key, value in more.items():
                entries.setdefault(key, value)
        entries.update(self.entries)
        return Glossary(entries)

    def expand(self, query: str) -> str:
        def spell(match: re.Match[str]) -> str:
            word = match.group(0)
            expansion = self.entries.get(word) or self.entries.get(word.rstrip("s"))
            if not expansion or expansion.lower() in query.lower():
                return word
            return f"{word} ({expansion})"

        return _ACRONYM.sub(spell, query) if self.entries else query


def rewrite(query: str, glossary: Glossary | None = None) -> str:
    """The query as retrieval should see it: wrappers stripped, then acronyms expanded."""
    text = strip_wrappers(query)
    return glossary.expand(text) if glossary is not None else text
