"""An evaluation dataset: cases (a request and checks on its outcome) and the variants to
run them under.

A dataset is a JSON or TOML file::

    {"name": "tuning", "concurrency": 4,
     "variants": [{"name": "current"}, {"name": "candidate", "task_queue": "agents-v2"}],
     "cases": [{"id": "tune", "agent": "db-tuner", "goal": "make the slow queries fast",
                "approvals": "reject",
                "expect": {"status": "completed", "answer": ["non_empty", "contains:index"],
                           "tools_called": ["create_index"], "tools_not_called": ["drop_index"],
                           "state": ["slow_queries_indexed"]}}]}

A variant may also override the agents' specs (``"overrides": {"db-tuner":
{"deny_tools": ["create_index"]}}``, see `domain.spec_overrides`): the eval then runs
those cases on a worker of its own.

Answer checks are the ones plans use (``non_empty``, ``max_len:N``, ``has:F``,
``equals:F=V``, on the answer parsed as JSON when it is JSON) plus ``contains:TEXT`` and
``not_contains:TEXT``; an eval has no judge model, so a criterion no code can check is
refused when the dataset loads. Tool checks name a tool (``create_index``) or an exact
call as the run's steps label it (``create_index(orders.customer_id)``).
"""

import json
import re
import tomllib
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from durable_agents._domain.budget import BudgetOverride
from durable_agents._domain.run import RunStatus
from durable_agents._domain.spec_overrides import SpecPatch, override_problems

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ANSWER_CHECKS = ("non_empty", "max_len", "has", "equals", "contains", "not_contains")


class DatasetError(ValueError):
    """A dataset that cannot be run; the message names every problem and its place."""


class ApprovalAnswer(StrEnum):
    """What an eval answers when a run asks for approval (it never waits on a person)."""

    APPROVE = "approve"
    REJECT = "reject"


class Expect(BaseModel):
    """Checks on a run's outcome; a case passes when every one holds."""

    model_config = ConfigDict(extra="forbid")

    status: RunStatus | None = Field(default=RunStatus.COMPLETED, description="None: any.")
    answer: list[str] = []
    tools_called: list[str] = []
    tools_not_called: list[str] = []
    state: list[str] = Field(
        default=[], description="State checks the agent's plugin provides, as NAME or NAME:ARG."
    )

    @field_validator("answer")
    @classmethod
    def _answer_checks(cls, checks: list[str]) -> list[str]:
        for check in checks:
            name, _, arg = check.strip().partition(":")
            if name not in ANSWER_CHECKS:
                raise ValueError(
                    f"answer check '{check}' is not one code can check; use one of "
                    + ", ".join(ANSWER_CHECKS)
                )
            if name == "max_len" and not arg.isdigit():
                raise ValueError(f"answer check '{check}' needs a number: max_len:2000")
        return checks


class EvalCase(BaseModel):
    """One request and what its run must show."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_NAME)
    agent: str = Field(min_length=1, max_length=64)
    goal: str = Field(min_length=1, max_length=20_000)
    user: str = Field(default="eval", min_length=1, max_length=200)
    budget: BudgetOverride | None = None
    approvals: ApprovalAnswer = Field(
        default=ApprovalAnswer.REJECT, description="The answer to every approval request."
    )
    approvals_by_tool: dict[str, ApprovalAnswer] = Field(
        default={}, description="Answers for requests about these tools (over `approvals`)."
    )
    expect: Expect = Expect()

    def answer_for(self, tool: str | None) -> ApprovalAnswer:
        """What the eval answers to a request about ``tool``."""
        return self.approvals_by_tool.get(tool or "", self.approvals)


class Variant(BaseModel):
    """One way of running every case: a model, a worker version, spec overrides, shadow.

    A request may change only a model the agent's bounds allow; the worker decides the
    rest. So a variant names the worker version its runs go to, by its task queue or as
    a version of a Worker Deployment (``deployment`` and ``build_id``, the runs pinned
    to it whatever the rollout), or changes the agents' specs with ``overrides``
    (`domain.spec_overrides`): the eval then runs a worker of its own with those specs,
    on a private task queue, for this variant's runs. ``data_dir`` is the data
    directory of the variant's worker, for state checks (and, with overrides, the data
    its tools work on; default: a new empty directory).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    task_queue: str | None = Field(default=None, description="None: the client's queue.")
    deployment: str | None = Field(default=None, description="With build_id: a worker version.")
    build_id: str | None = Field(
        default=None, description="Runs pinned to this version of `deployment`."
    )
    model: str | None = Field(default=None, max_length=200)
    shadow: bool = Field(default=False, description="Write and irreversible tools not run.")
    compare_to: str | None = Field(
        default=None, description="A live variant whose plans and answers this one's compare with."
    )
    data_dir: str | None = None
    overrides: dict[str, SpecPatch] = Field(
        default={}, description="Per agent, a patch of its spec (run on the eval's own worker)."
    )

    @field_validator("overrides")
    @classmethod
    def _known_fields(cls, overrides: dict[str, SpecPatch]) -> dict[str, SpecPatch]:
        problems = [
            p for agent, patch in overrides.items() for p in override_problems(agent, patch)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return overrides


class Dataset(BaseModel):
    """Cases and the variants to run them under (one ``current`` variant by default)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="eval", pattern=_NAME)
    concurrency: int = Field(default=4, ge=1, le=256)
    variants: list[Variant] = Field(default=[Variant(name="current")], min_length=1)
    cases: list[EvalCase] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "Dataset":
        for what, names in (
            ("case id", [c.id for c in self.cases]),
            ("variant name", [v.name for v in self.variants]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"each {what} must be unique; repeated: {', '.join(dupes)}")
        variants = {v.name for v in self.variants}
        for v in self.variants:
            if (v.deployment is None) != (v.build_id is None):
                raise ValueError(
                    f"variant '{v.name}' names a worker version with both deployment and build_id"
                )
        for v in self.variants:
            if v.overrides and (v.task_queue or v.deployment):
                raise ValueError(
                    f"variant '{v.name}' overrides specs, so its runs go to this eval's own "
                    "worker: drop its task_queue, deployment and build_id"
                )
            if v.compare_to is not None and (
                v.compare_to not in variants or v.compare_to == v.name
            ):
                raise ValueError(
                    f"variant '{v.name}' compares to '{v.compare_to}', which is not another "
                    f"variant; the variants: {', '.join(sorted(variants))}"
                )
        return self


def parse_dataset(text: str, *, toml: bool = False) -> Dataset:
    """A dataset from JSON (or TOML) text; `DatasetError` lists every problem."""
    try:
        raw = tomllib.loads(text) if toml else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise DatasetError(
            f"the dataset is not valid {'TOML' if toml else 'JSON'}: {err}"
        ) from None
    try:
        return Dataset.model_validate(raw)
    except ValidationError as err:
        raise DatasetError(_problems(err)) from None


def _problems(err: ValidationError) -> str:
    lines = [
        f"  - {'.'.join(str(p) for p in e['loc']) or 'dataset'}: "
        + re.sub(r"^Value error, ", "", e["msg"])
        for e in err.errors()
    ]
    return "the dataset has problems:\n" + "\n".join(lines)
