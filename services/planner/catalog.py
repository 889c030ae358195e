"""What the planner knows about the agents it may use: their cards' skills, nothing else.

A :class:`Capability` is one skill of one agent with the words that describe it
(tags, id, name, description, examples, and the agent's description). Matching a
request against those words, and a few roles read from tags, is how agents are
chosen: never by their names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from a2a.types import a2a_pb2

KNOWLEDGE_TAGS = frozenset({"knowledge", "rag", "documents", "docs", "retrieval", "knowledge-base"})
GENERAL_TAGS = frozenset({"reasoning", "chat", "general", "analysis", "qa"})
SYNTHESIS_TAGS = frozenset({"synthesis", "summarisation", "summarization", "writing"})
# Skills that plan or route requests: a plan step must never send work back to them.
META_TAGS = frozenset({"orchestration", "planning", "routing"})
TEXT_MODES = ("text/plain", "text", "text/*", "*/*")

_STOPWORD_TEXT = (
    "a an the and or of to in on for with by from at as is are was were be been being it its this that "
    "these those what which who whom whose how why when where do does did can could should would will "
    "shall may might must i me my we our you your he she they them their there here about into than then "
    "so if not no yes please tell give show explain describe answer question questions some any all each "
    "more most other such also just only very much many make like use using between vs versus compare "
    "comparison first next finally after before up out over under again once both either neither own same "
    "few pick choose prefer adopt select learn"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split(" "))

_WORD = re.compile(r"[a-z0-9][a-z0-9+#.-]*")


def words(text: str) -> set[str]:
    """Content words of ``text``, lowercased, with a plural ``s`` dropped so "forecasts" meets "forecast"."""
    found = set()
    for raw in _WORD.findall(text.lower()):
        for word in re.split(r"[-.]", raw.strip(".")):
            if len(word) < 2 or word in STOPWORDS:
                continue
            found.add(word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word)
    return found


@dataclass(frozen=True, slots=True)
class Capability:
    agent: str
    skill_id: str
    tags: frozenset[str]
    vocabulary: frozenset[str]
    """Words of the skill's tags, id, name, description and examples."""
    agent_words: frozenset[str]
    """Words of the agent's own description: weaker evidence than the skill's."""
    order: int
    """Position in the candidates, to break ties the same way every time."""

    @property
    def key(self) -> str:
        return f"{self.agent}:{self.skill_id}"

    def has_role(self, role_tags: frozenset[str]) -> bool:
        return bool(self.tags & role_tags) or bool(words(self.skill_id) & role_tags)


class Catalog:
    """The candidates' capabilities; also the :class:`runtime.plans.AgentCatalog` plans are validated against."""

    def __init__(self, cards: Sequence[a2a_pb2.AgentCard]) -> None:
        self.cards = {card.name: card for card in cards}
        self.capabilities = list(_capabilities(cards))

    def skills_of(self, agent: str) -> Sequence[str] | None:
        card = self.cards.get(agent)
        return None if card is None else [skill.id for skill in card.skills]

    def usable(self) -> list[Capability]:
        return self.capabilities

    def with_role(self, role_tags: frozenset[str]) -> list[Capability]:
        return [c for c in self.capabilities if c.has_role(role_tags)]

    def best(self, text: str, *, prefer: frozenset[str] = frozenset()) -> Capability | None:
        """The capability whose words best match ``text``; ``prefer`` adds weight to a role.

        With no word in common, a general-purpose skill answers; with none of those,
        the first capability does.
        """
        wanted = words(text)
        scored: list[tuple[float, int, Capability]] = []
        for cap in self.capabilities:
            score = 3.0 * len(wanted & cap.tags) + 1.0 * len(wanted & cap.vocabulary)
            score += 0.25 * len(wanted & cap.agent_words)
            if prefer and cap.has_role(prefer):
                score += 5.0
            scored.append((score, -cap.order, cap))
        if not scored:
            return None
        top = max(scored, key=lambda s: (s[0], s[1]))
        if top[0] >= 2.0:
            return top[2]
        return self.general() or top[2]

    def general(self) -> Capability | None:
        """The general-purpose skill: tagged as such, else the first that is not a knowledge skill."""
        for cap in self.capabilities:
            if cap.has_role(GENERAL_TAGS):
                return cap
        return next((c for c in self.capabilities if not c.has_role(KNOWLEDGE_TAGS)), None)

    def synthesizer(self) -> Capability | None:
        roles = self.with_role(SYNTHESIS_TAGS)
        return roles[0] if roles else self.general()

    def knowledge(self) -> Capability | None:
        roles = self.with_role(KNOWLEDGE_TAGS)
        return roles[0] if roles else None


def _capabilities(cards: Sequence[a2a_pb2.AgentCard]) -> Iterable[Capability]:
    order = 0
    for card in cards:
        agent_words = frozenset(words(card.description))
        for skill in card.skills:
            tags = frozenset(t.lower() for t in skill.tags)
            if tags & META_TAGS or not _takes_text(card, skill):
                continue
            vocabulary = words(" ".join([skill.id, skill.name, skill.description, *skill.tags, *skill.examples]))
            yield Capability(card.name, skill.id, tags, frozenset(vocabulary), agent_words, order)
            order += 1


def _takes_text(card: a2a_pb2.AgentCard, skill: a2a_pb2.AgentSkill) -> bool:
    """Steps send text; a skill whose card says it takes none cannot be a step."""
    modes = list(skill.input_modes) or list(card.default_input_modes)
    return not modes or any(m.lower() in TEXT_MODES or m.lower().startswith("text/") for m in modes)
