"""Accuracy of the rule planner on ``bench/planner_cases.json``: ``python -m bench.planner_eval``.

Each case is a request and the plan shape expected for it over a fixed set of Agent
Cards: the plan's layers (steps grouped by how many dependencies deep they are, so a
layer's steps run in parallel), each step as ``agent:skill``, and, for plans that end
in one step (a synthesis or the last of a sequence), ``"output": "last"``.

- *exact structure*: the plan's layers and output step are exactly the expected ones;
- *agent selection*: the plan uses exactly the expected set of agent skills.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from a2a.types import a2a_pb2
from google.protobuf import json_format

from runtime.plans import validate_plan
from services.planner.catalog import Catalog
from services.planner.rules import plan_by_rules
from switchboard.v1 import plan_pb2

CASES = Path(__file__).with_name("planner_cases.json")


@dataclass
class Report:
    total: int = 0
    exact: int = 0
    agents: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def exact_accuracy(self) -> float:
        return self.exact / self.total if self.total else 0.0

    @property
    def agent_accuracy(self) -> float:
        return self.agents / self.total if self.total else 0.0


def load(path: Path = CASES) -> tuple[Catalog, list[dict[str, Any]]]:
    data = json.loads(path.read_text())
    cards = [json_format.ParseDict(c, a2a_pb2.AgentCard()) for c in data["cards"]]
    return Catalog(cards), data["cases"]


def shape(plan: plan_pb2.Plan) -> tuple[list[list[str]], str | None]:
    """The plan's layers of ``agent:skill`` (sorted within a layer) and ``"last"`` when one step is the output."""
    by_id = {s.id: s for s in plan.steps}
    depth: dict[str, int] = {}

    def level(step_id: str) -> int:
        if step_id not in depth:
            depth[step_id] = 1 + max((level(d) for d in by_id[step_id].depends_on), default=-1)
        return depth[step_id]

    layers: dict[int, list[str]] = {}
    for step in plan.steps:
        layers.setdefault(level(step.id), []).append(f"{step.agent}:{step.skill_id}")
    ordered = [sorted(layers[k]) for k in sorted(layers)]
    last = ordered[-1]
    output = (
        "last"
        if plan.output_step_id
        and len(last) == 1
        and depth[plan.output_step_id] == len(ordered) - 1
        and len(ordered) > 1
        else None
    )
    return ordered, output


def evaluate(path: Path = CASES) -> Report:
    catalog, cases = load(path)
    report = Report()
    for case in cases:
        report.total += 1
        plan = plan_by_rules(case["request"], catalog)
        validate_plan(plan, catalog)
        layers, output = shape(plan)
        expected = [sorted(layer) for layer in case["layers"]]
        got_skills = {s for layer in layers for s in layer}
        if got_skills == {s for layer in expected for s in layer}:
            report.agents += 1
        if layers == expected and output == case.get("output"):
            report.exact += 1
        else:
            report.misses.append(
                f"{case['request']!r}: expected {expected} {case.get('output')}, got {layers} {output}"
            )
    return report


def main() -> int:
    report = evaluate()
    print(f"planner evaluation: {report.total} requests in {CASES.name}")
    print(f"  exact structure  {report.exact}/{report.total} = {report.exact_accuracy:.1%}")
    print(f"  agent selection  {report.agents}/{report.total} = {report.agent_accuracy:.1%}")
    for miss in report.misses:
        print(f"  miss: {miss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
