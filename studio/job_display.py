"""How a job reads on its page: a one-line outcome, its figures, and the jobs it started.

Job results are written by each kind's service for machines (the API returns them as they
are); this module turns them into words a person reads — labels instead of keys, "yes"
instead of ``False``, "1 problem" instead of "1 problems" — without any query of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from studio.models import Job

# Keys that are not figures: lists and files shown elsewhere on the page, ids, internals.
HIDDEN = frozenset(
    {
        "failed", "space", "run", "follow_ups", "problems", "by_kind", "written",
        "not_held", "ambiguous_image_names", "statuses", "path", "name", "size",
        "expired_at", "dry_run", "dataset", "status", "note",
    }
)  # fmt: skip

# key → (singular, plural) label of a count, or one label for anything else.
LABELS: dict[str, tuple[str, str] | str] = {
    "accepted": ("image added", "images added"),
    "duplicate": ("duplicate", "duplicates"),
    "rejected": ("file rejected", "files rejected"),
    "embedded": ("image embedded", "images embedded"),
    "skipped": ("skipped", "skipped"),
    "measured": ("image measured", "images measured"),
    "duplicate_groups": ("near-duplicate group", "near-duplicate groups"),
    "outliers": ("outlier", "outliers"),
    "clusters": ("cluster", "clusters"),
    "images": ("image", "images"),
    "annotations": ("annotation", "annotations"),
    "drafts": ("draft made", "drafts made"),
    "skipped_overlap": ("skipped (overlaps a mask)", "skipped (overlap a mask)"),
    "records": ("record read", "records read"),
    "imported": ("annotation imported", "annotations imported"),
    "problem_count": ("problem", "problems"),
    "not_held_count": ("cannot be held", "cannot be held"),
    "k": "clusters asked for",
    "version": "version",
    "backbone": "backbone",
    "format": "format",
    "method": "method",
    "mode": "mode",
    "action": "action",
}


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}"
    return str(value)


def _label(key: str, value: Any) -> str:
    label = LABELS.get(key, key.replace("_", " "))
    if isinstance(label, tuple):
        return label[0] if value == 1 else label[1]
    return label


def result_rows(job: Job) -> list[tuple[str, str]]:
    """Return (label, value) pairs of the job's figures, in the order the service wrote them."""
    result = job.result or {}
    return [
        (_label(key, value), _value(value))
        for key, value in result.items()
        if key not in HIDDEN and not isinstance(value, dict | list)
    ]


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n:,} {singular if n == 1 else plural}"


@dataclass(frozen=True)
class Outcome:
    """The job's status line: the badge's class and word, and a sentence."""

    tone: str
    badge: str
    sentence: str


def outcome(job: Job, ingest_counts: dict[str, int] | None = None) -> Outcome:
    """Return the job's status line.

    The tone is the badge's class: a job that ran to its end but achieved nothing (an
    upload whose every file was rejected) is a warning, not a green success.
    """
    result = job.result or {}
    status = job.get_status_display()
    if job.status == Job.Status.FAILED:
        return Outcome("failed", status, "Stopped: see the error below.")
    if job.status != Job.Status.SUCCEEDED:
        return Outcome(job.status, status, job.message)
    if job.kind == Job.Kind.INGEST and ingest_counts is not None:
        added, dup, rejected = (
            ingest_counts.get(k, 0) for k in ("accepted", "duplicate", "rejected")
        )
        parts = [
            _count(added, "image added", "images added"),
            _count(dup, "duplicate skipped", "duplicates skipped"),
            _count(rejected, "file rejected", "files rejected"),
        ]
        if added == 0:
            why = "every file was rejected" if rejected and not dup else "nothing new was uploaded"
            return Outcome(
                "warning", "Nothing added", f"Nothing was added: {why} ({', '.join(parts[1:])})."
            )
        if rejected:
            return Outcome("warning", "Some files rejected", ", ".join(parts) + ".")
        return Outcome("succeeded", status, ", ".join(parts) + ".")
    if job.kind == Job.Kind.IMPORT and result.get("dry_run"):
        problems = result.get("problem_count", 0)
        checked = _count(result.get("records", 0), "record checked", "records checked")
        if problems:
            found = _count(problems, "problem", "problems")
            return Outcome(
                "warning", "Problems found", f"Dry run: {checked}, {found}; nothing was written."
            )
        return Outcome(
            "succeeded", "Checked", f"Dry run: {checked}, no problems; nothing was written."
        )
    if job.kind == Job.Kind.PREANNOTATE and not result.get("drafts") and result.get("failed"):
        return Outcome(
            "warning", "No drafts", "No draft was made: see the images that failed below."
        )
    return Outcome("succeeded", status, "Done.")


@dataclass(frozen=True)
class ChainStep:
    """A job that a one-click action started after this one (or will start)."""

    label: str
    job: Job | None


FOLLOW_UP_KINDS = {"analyze": Job.Kind.ANALYZE, "cluster": Job.Kind.CLUSTER}


def chain(job: Job, started: dict[int, Job]) -> list[ChainStep]:
    """Return the follow-up steps this job plans (``params.then``), with their jobs once started.

    ``started`` maps the ids of the follow-ups the job recorded to the rows the caller may see.
    """
    planned = job.params.get("then") or []
    by_kind = {started[i].kind: started[i] for i in follow_up_ids(job) if i in started}
    steps = []
    for name in planned:
        kind = FOLLOW_UP_KINDS.get(name)
        if kind is None:
            continue
        steps.append(ChainStep(label=Job.Kind(kind).label, job=by_kind.get(kind)))
    return steps


def follow_up_ids(job: Job) -> list[int]:
    """Return the ids of the jobs this one started (known once it has started them)."""
    return (job.result or {}).get("follow_ups") or (job.checkpoint or {}).get("follow_ups") or []


def chain_active(job: Job, steps: list[ChainStep]) -> bool:
    """Whether the page should keep polling: this job or a started step is still running.

    A planned step with no job after this one finished was never started (the job's notes
    say why), so it is not waited for.
    """
    return job.is_active or any(step.job is not None and step.job.is_active for step in steps)
