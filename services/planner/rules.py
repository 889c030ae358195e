"""Rule-based planning: a request's shape decides the plan's shape, the cards decide the agents.

Four shapes, tried in this order:

- **comparison** ("compare X and Y", "X vs Y", "pros and cons of A, B and C",
  "differences between X and Y"): one branch per item, run in parallel, each
  allowed to fail, plus a synthesis step that reads every branch's output;
- **multi-part** ("first ..., then ...", numbered parts, several questions): one
  step per part, in sequence when a later part builds on an earlier answer
  ("then", "based on that", "it"), else in parallel;
- **knowledge question** (the request points at documents: "our docs", "the
  handbook", "according to"): the skill tagged ``knowledge``/``rag``/``documents``;
- **documents** (no such words, but the knowledge probe found a relevant passage in
  the knowledge agent's collections, ``services/planner/probe.py``): the knowledge
  skill too, or the knowledge skill then the general one writing the answer from its
  passages (``SWITCHBOARD_PLANNER_DOCUMENT_ANSWER=reasoning``);
- **single**: the one skill whose card words best match the request; when the probe
  searched and found nothing relevant, never the knowledge skill on word matches alone
  (its answer would be that nothing was found).

Agents are picked by :class:`Catalog` from their skills' tags and descriptions,
never by name; a request that no candidate can take raises :class:`PlanInvalidError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.protobuf import duration_pb2

from runtime.errors import PlanInvalidError
from runtime.messages import new_id
from services.planner.catalog import KNOWLEDGE_TAGS, STOPWORDS, Capability, Catalog
from services.planner.probe import RetrievalSignal
from switchboard.v1 import plan_pb2

DOCUMENT_ANSWERS = ("knowledge", "reasoning")
"""Who writes the answer to a question the documents hold (``SWITCHBOARD_PLANNER_DOCUMENT_ANSWER``)."""

MAX_ITEMS = 6
"""More items than this is a list to research, not a comparison to run as branches."""

_KNOWLEDGE_CUES = re.compile(
    r"\b(our|internal|company|handbook|documentation|docs?|documents?|knowledge[ -]base|wiki|polic(?:y|ies)|"
    r"manuals?|according to|cite|citations?|runbooks?|onboarding|faq)\b",
    re.IGNORECASE,
)
_ASPECT = r"(?P<aspect>\s+(?:for|in terms of|regarding|on|when|with respect to|as|from the perspective of)\s+.+)?"
_COMPARISONS = [
    re.compile(r"\bpros and cons of\s+(?P<items>.+?)" + _ASPECT + r"$", re.IGNORECASE),
    re.compile(r"\b(?:differences?|comparison|trade-?offs?)\s+between\s+(?P<items>.+?)" + _ASPECT + r"$", re.I),
    re.compile(r"\b(?:compare|contrast|comparing)\s+(?P<items>.+?)" + _ASPECT + r"$", re.IGNORECASE),
    re.compile(r"\bwhich is better\s*[,:]?\s+(?P<items>.+?)" + _ASPECT + r"$", re.IGNORECASE),
]
_VS = re.compile(r"\s+(?:vs\.?|versus)\s+", re.IGNORECASE)
_ITEM_SPLIT = re.compile(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|with|against|to)\s+", re.IGNORECASE)
_SEQUENCE = re.compile(
    r"(?:^|[.;!?]\s*|,\s*|\s+)(?:and\s+)?"
    r"(?:then|after that|afterwards|next|finally|once (?:done|that is done))\b[,:]?\s*",
    re.IGNORECASE,
)
_FIRST = re.compile(r"^\s*(?:first(?:ly)?|to start|start by)\b[,:]?\s*", re.IGNORECASE)
_NUMBERED = re.compile(r"(?:^|\s)\(?\d[.)]\s+")
_ALSO = re.compile(r"(?:[.;!?]\s*|,\s*|\s+)(?:and\s+)?also\b[,:]?\s*", re.IGNORECASE)
_BACKREF = re.compile(
    r"\b(it|its|that|this|these|those|them|the (?:result|results|answer|answers|list|summary|above)|above|"
    r"based on|using (?:that|this|it)|from (?:that|this|it))\b",
    re.IGNORECASE,
)

DEFAULT_POLICY = plan_pb2.StepPolicy(
    timeout=duration_pb2.Duration(seconds=60),
    max_retries=2,
    retry_initial_backoff=duration_pb2.Duration(nanos=500_000_000),
    retry_max_backoff=duration_pb2.Duration(seconds=8),
)
# Retrieval answers fast or not at all; a synthesis reads every branch and writes more.
KNOWLEDGE_TIMEOUT = duration_pb2.Duration(seconds=30)
SYNTHESIS_POLICY = plan_pb2.StepPolicy(timeout=duration_pb2.Duration(seconds=120), max_retries=1)


@dataclass(frozen=True, slots=True)
class Part:
    text: str
    depends: str = ""
    """"" (independent), "previous" (a "then" chain) or "all" (refers back to the parts before it)."""


def plan_by_rules(
    goal: str,
    catalog: Catalog,
    signal: RetrievalSignal | None = None,
    document_answer: str = "knowledge",
    *,
    documents: bool = False,
) -> plan_pb2.Plan:
    """A plan for ``goal`` over the catalog's capabilities (not yet validated).

    ``signal`` is the knowledge probe's finding for a single question without document cues
    (:func:`needs_probe`); None plans as if there were no documents to look at. ``documents``:
    the request points at documents by other means than its words (it names a collection).
    """
    text = " ".join(goal.split())
    if not text:
        raise PlanInvalidError("the request is empty: there is nothing to plan")
    if not catalog.usable():
        raise PlanInvalidError("no candidate agent has a skill that takes text: nothing can answer")
    comparison = comparison_items(text)
    if comparison is not None:
        items, aspect = comparison
        return _comparison_plan(text, items, aspect, catalog)
    parts = split_parts(text)
    if len(parts) > 1:
        return _multipart_plan(text, parts, catalog)
    cued = documents or bool(_KNOWLEDGE_CUES.search(text))
    cap = _pick(text, catalog, knowledge=True) if documents else _pick(text, catalog)
    knowledge = catalog.knowledge()
    if not cued and signal is not None and not signal.skipped and knowledge is not None:
        if signal.relevant:
            return _documents_plan(text, knowledge, catalog, document_answer)
        if cap.has_role(KNOWLEDGE_TAGS):
            # Matched the knowledge skill's words ("search", "docs"...), but the documents hold
            # nothing relevant: its answer would be that it found nothing.
            cap = catalog.general() or cap
    rule = "knowledge" if cap.has_role(KNOWLEDGE_TAGS) and cued else "single"
    return _plan(
        text, rule, [_step("answer", cap, "{{input}}", "Answer the request")], plan_pb2.FAILURE_POLICY_FAIL_FAST
    )


def needs_probe(goal: str, catalog: Catalog) -> bool:
    """Whether the rules use the knowledge probe for ``goal``: one question, no document cue, a knowledge skill."""
    text = " ".join(goal.split())
    if not text or catalog.knowledge() is None or _KNOWLEDGE_CUES.search(text):
        return False
    return comparison_items(text) is None and len(split_parts(text)) == 1


# -- request shapes ------------------------------------------------------------------


def comparison_items(text: str) -> tuple[list[str], str] | None:
    """The items a comparison request compares and the aspect it compares them on, or None."""
    body = text.rstrip(" ?.!")
    for pattern in _COMPARISONS:
        match = pattern.search(body)
        if match:
            items = _clean_items(_ITEM_SPLIT.split(match.group("items")))
            if 2 <= len(items) <= MAX_ITEMS:
                return items, (match.group("aspect") or "").strip()
    if _VS.search(body):
        pieces = _VS.split(body)
        first = _tail_words(pieces[0])
        last, aspect = _split_aspect(pieces[-1])
        items = _clean_items([first, *pieces[1:-1], last])
        if 2 <= len(items) <= MAX_ITEMS:
            return items, aspect
    return None


def split_parts(text: str) -> list[Part]:
    """The parts of a multi-part request, each marked when it builds on the one before."""
    numbered = [p for p in _NUMBERED.split(text) if p.strip()]
    if len(numbered) > 2 or (len(numbered) == 2 and _NUMBERED.match(text)):
        pieces = numbered[1:] if not _NUMBERED.match(text) and len(numbered) > 2 else numbered
        return _listed([_tidy(p) for p in pieces if _tidy(p)])
    sequence = [p for p in _SEQUENCE.split(_FIRST.sub("", text)) if _tidy(p)]
    if len(sequence) > 1:
        return [Part(_tidy(p), "previous" if i else "") for i, p in enumerate(sequence)]
    also = [p for p in _ALSO.split(text) if _tidy(p)]
    if len(also) > 1:
        return _listed([_tidy(p) for p in also])
    questions = [q for q in re.split(r"(?<=\?)\s+", text) if q.strip()]
    if len(questions) > 1 and all(q.rstrip().endswith("?") for q in questions):
        return _listed([_tidy(q) for q in questions])
    return [Part(text)]


def _listed(texts: list[str]) -> list[Part]:
    """Listed parts are independent, except one that refers back ("which of them") reads all before it."""
    return [Part(t, "all" if i and _BACKREF.search(t) else "") for i, t in enumerate(texts)]


# -- plan builders ---------------------------------------------------------------------


def _comparison_plan(goal: str, items: list[str], aspect: str, catalog: Catalog) -> plan_pb2.Plan:
    steps: list[plan_pb2.Step] = []
    ids: list[str] = []
    knowledge = bool(_KNOWLEDGE_CUES.search(goal))
    focus = f" {aspect}" if aspect else ""
    for item in items:
        step_id = _unique(_slug(item), ids)
        ids.append(step_id)
        cap = _pick(f"{item} {aspect}", catalog, knowledge=knowledge, whole=goal)
        text = (
            f"Describe {item}{focus}: its strengths, weaknesses and typical uses. "
            f"Cover {item} only; other items are covered separately. The whole request: {{{{input}}}}"
        )
        step = _step(step_id, cap, text, f"Research {item}")
        step.policy.may_fail = True  # one missing branch still leaves a useful comparison
        steps.append(step)
    synth = catalog.synthesizer()
    if synth is None:
        raise PlanInvalidError("no candidate agent can combine the branches of a comparison")
    sections = "\n\n".join(f"## {item}\n{{{{steps.{sid}.output}}}}" for item, sid in zip(items, ids, strict=True))
    text = (
        f"Answer the request by comparing {', '.join(items)}{focus}. Request: {{{{input}}}}\n\n"
        f"Notes on each, gathered separately:\n\n{sections}\n\n"
        "Weigh them against each other and give a recommendation; say so where notes on an item are missing."
    )
    synthesis = _step(_unique("synthesis", ids), synth, text, "Compare and recommend", depends_on=ids)
    synthesis.policy.MergeFrom(SYNTHESIS_POLICY)
    steps.append(synthesis)
    plan = _plan(goal, "compare", steps, plan_pb2.FAILURE_POLICY_BEST_EFFORT)
    plan.output_step_id = synthesis.id
    return plan


def _documents_plan(goal: str, knowledge: Capability, catalog: Catalog, document_answer: str) -> plan_pb2.Plan:
    """A question the documents answer: the knowledge skill, then (when asked) the general skill writing from it."""
    writer = catalog.general() if document_answer == "reasoning" else None
    if writer is None or writer.key == knowledge.key:
        step = _step("answer", knowledge, "{{input}}", "Answer from the documents")
        return _plan(goal, "documents", [step], plan_pb2.FAILURE_POLICY_FAIL_FAST)
    find = _step("documents", knowledge, "{{input}}", "Find the passages that answer the request")
    text = (
        "Answer the request using only the numbered passages below, citing each claim with its number in "
        "square brackets like [1]; if they do not answer it, say so.\n\nRequest: {{input}}\n\n"
        "Passages:\n{{steps.documents.output}}"
    )
    write = _step("answer", writer, text, "Write the answer from the passages", depends_on=[find.id])
    plan = _plan(goal, "documents", [find, write], plan_pb2.FAILURE_POLICY_FAIL_FAST)
    plan.output_step_id = write.id
    return plan


def _multipart_plan(goal: str, parts: list[Part], catalog: Catalog) -> plan_pb2.Plan:
    steps: list[plan_pb2.Step] = []
    sequential = any(p.depends for p in parts)
    for index, part in enumerate(parts, start=1):
        step_id = f"part_{index}"
        # Each part is matched on its own words: "translate the summary" wants a translator
        # even when the request's first part was about documents.
        cap = _pick(part.text, catalog)
        deps = [] if not part.depends else [steps[-1].id] if part.depends == "previous" else [s.id for s in steps]
        text = part.text
        if deps:
            earlier = "\n\n".join(f"{{{{steps.{d}.output}}}}" for d in deps)
            text = f"{part.text}\n\nBuild on the earlier result:\n{earlier}"
        steps.append(_step(step_id, cap, text, _summary(part.text), depends_on=deps))
    if sequential:
        plan = _plan(goal, "sequence", steps, plan_pb2.FAILURE_POLICY_FAIL_FAST)
        plan.output_step_id = steps[-1].id
        return plan
    # Independent parts: every answer is part of the reply (no output step: leaves are joined).
    return _plan(goal, "parallel", steps, plan_pb2.FAILURE_POLICY_BEST_EFFORT)


def _pick(text: str, catalog: Catalog, *, knowledge: bool | None = None, whole: str = "") -> Capability:
    wants_knowledge = (
        bool(_KNOWLEDGE_CUES.search(text) or _KNOWLEDGE_CUES.search(whole)) if knowledge is None else knowledge
    )
    cap = catalog.best(text, prefer=KNOWLEDGE_TAGS if wants_knowledge else frozenset())
    if cap is None:
        raise PlanInvalidError("no candidate agent can answer this request")
    return cap


def _step(
    step_id: str, cap: Capability, text: str, description: str, *, depends_on: list[str] | None = None
) -> plan_pb2.Step:
    step = plan_pb2.Step(
        id=step_id,
        agent=cap.agent,
        skill_id=cap.skill_id,
        input=text,
        depends_on=depends_on or [],
        description=description,
    )
    if cap.has_role(KNOWLEDGE_TAGS):
        step.policy.timeout.CopyFrom(KNOWLEDGE_TIMEOUT)
    return step


def _plan(goal: str, rule: str, steps: list[plan_pb2.Step], failure: int) -> plan_pb2.Plan:
    plan = plan_pb2.Plan(
        id=new_id(),
        origin=plan_pb2.PLAN_ORIGIN_RULES,
        planner=f"rules/{rule}",
        goal=goal,
        steps=steps,
        failure_policy=failure,  # type: ignore[arg-type]
        default_step_policy=DEFAULT_POLICY,
    )
    plan.create_time.GetCurrentTime()
    return plan


# -- text helpers ------------------------------------------------------------------------


def _clean_items(raw: list[str]) -> list[str]:
    items = []
    for item in raw:
        item = re.sub(r"^(?:the|a|an|between|of)\s+", "", item.strip(" ,.:;!?\"'"), flags=re.IGNORECASE)
        if item and item.lower() not in STOPWORDS:
            items.append(item)
    return items


def _tail_words(text: str, limit: int = 3) -> str:
    """The noun phrase just before "vs": trailing words up to the first function word."""
    words = text.replace(",", " ").replace(":", " ").split()
    tail: list[str] = []
    for word in reversed(words):
        if word.lower() in STOPWORDS or len(tail) == limit:
            break
        tail.insert(0, word)
    return " ".join(tail)


def _split_aspect(text: str) -> tuple[str, str]:
    match = re.search(r"^(?P<item>.+?)" + _ASPECT + r"$", text, re.IGNORECASE)
    if match is None:
        return text, ""
    return match.group("item"), (match.group("aspect") or "").strip()


def _tidy(text: str) -> str:
    return text.strip(" ,;:").strip()


def _summary(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40]
    return slug or "item"


def _unique(base: str, taken: list[str]) -> str:
    candidate, n = base, 2
    while candidate in taken:
        candidate = f"{base}_{n}"
        n += 1
    return candidate
