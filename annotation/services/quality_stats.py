"""Quality statistics: a queue's and a project's numbers per annotator, and per image.

Read only. Each function takes the user and checks membership first; honeypot numbers
and per-image details go to reviewers and leads only. The rules behind each number are
in docs/annotation.md (Consensus, honeypots and quality statistics).
"""

from __future__ import annotations

from collections import defaultdict
from statistics import mean

from django.contrib.auth import get_user_model
from django.db.models import Count

from annotation.models import (
    AnnotationQueue,
    ConsensusResult,
    Honeypot,
    QueueItem,
    ReviewDecision,
    TaskSubmission,
)
from annotation.services.quality_control import HONEYPOT_PASS, require_reviewer
from studio.models import Project
from studio.permissions import Capability, require, role_can

MIN_SPAN_SECONDS = 60  # throughput's active span is never taken as shorter than a minute


def _annotator_rows(
    *, submissions, decisions, consensus, reveal_honeypots: bool, names: dict[int, str]
) -> list[dict]:
    rows: dict[int, dict] = {}

    def row(user_id: int) -> dict:
        if user_id not in rows:
            rows[user_id] = {
                "user": user_id, "username": names.get(user_id, f"user {user_id}"),
                "submitted": 0, "active_hours": 0.0, "throughput": None, "accepted": 0,
                "rejected": 0, "acceptance_rate": None, "agreement": None, "agreement_images": 0,
                "honeypots": None, "honeypots_correct": None, "honeypot_accuracy": None,
                "honeypot_mean_iou": None,
            }  # fmt: skip
        return rows[user_id]

    spans: dict[int, list] = defaultdict(list)
    scores: dict[int, list[float]] = defaultdict(list)
    for user_id, leased_at, submitted_at, score in submissions.values_list(
        "annotator_id", "leased_at", "submitted_at", "honeypot_score"
    ):
        if user_id is None:
            continue
        row(user_id)["submitted"] += 1
        spans[user_id] += [leased_at or submitted_at, submitted_at]
        if score is not None:
            scores[user_id].append(score)
    for user_id, times in spans.items():
        seconds = max((max(times) - min(times)).total_seconds(), MIN_SPAN_SECONDS)
        r = row(user_id)
        r["active_hours"] = seconds / 3600
        r["throughput"] = r["submitted"] / r["active_hours"]
    for user_id, decision, n in (
        decisions.filter(annotation__author__isnull=False)
        .values_list("annotation__author_id", "decision")
        .annotate(n=Count("id"))
    ):
        row(user_id)["accepted" if decision == "accept" else "rejected"] += n
    agreements: dict[int, list[float]] = defaultdict(list)
    for per_annotator in consensus.values_list("per_annotator", flat=True):
        for user_id, value in per_annotator.items():
            agreements[int(user_id)].append(value)
    for user_id, values in agreements.items():
        r = row(user_id)
        r["agreement"], r["agreement_images"] = mean(values), len(values)
    for r in rows.values():
        reviewed = r["accepted"] + r["rejected"]
        r["acceptance_rate"] = r["accepted"] / reviewed if reviewed else None
        if reveal_honeypots:
            mine = scores.get(r["user"], [])
            correct = sum(s >= HONEYPOT_PASS for s in mine)
            r.update(
                honeypots=len(mine), honeypots_correct=correct,
                honeypot_accuracy=correct / len(mine) if mine else None,
                honeypot_mean_iou=mean(mine) if mine else None,
            )  # fmt: skip
    missing = [u for u in rows if u not in names]
    if missing:
        for user in get_user_model().objects.filter(pk__in=missing):
            rows[user.pk]["username"] = user.username
    return sorted(rows.values(), key=lambda r: r["username"].lower())


def _names(project: Project) -> dict[int, str]:
    return dict(project.memberships.values_list("user_id", "user__username"))


def _queue_summary(queue: AnnotationQueue, *, reveal_honeypots: bool) -> dict:
    counts = dict(
        QueueItem.objects.filter(queue=queue, honeypot__isnull=True)
        .values_list("status")
        .annotate(n=Count("id"))
    )
    by_status = {s: counts.get(s, 0) for s in QueueItem.Status.values}
    total = sum(by_status.values())
    agreements = [
        a
        for a in ConsensusResult.objects.filter(queue=queue).values_list("agreement", flat=True)
        if a is not None
    ]
    summary = {
        "id": queue.pk, "name": queue.name, "annotators_per_image": queue.annotators_per_image,
        "items": total, "by_status": by_status,
        "done_percent": 100 * by_status["done"] / total if total else 0.0,
        "agreement": mean(agreements) if agreements else None,
        "agreement_images": len(agreements),
        "merged_images": ConsensusResult.objects.filter(queue=queue, merged_at__isnull=False).count(),
        "honeypots": None, "honeypot_answers": None, "honeypot_accuracy": None,
    }  # fmt: skip
    if reveal_honeypots:
        scored = list(
            TaskSubmission.objects.filter(queue=queue, honeypot_score__isnull=False).values_list(
                "honeypot_score", flat=True
            )
        )
        summary.update(
            honeypots=Honeypot.objects.filter(queue=queue).count(), honeypot_answers=len(scored),
            honeypot_accuracy=sum(s >= HONEYPOT_PASS for s in scored) / len(scored) if scored else None,
        )  # fmt: skip
    return summary


def queue_stats(*, user, queue: AnnotationQueue) -> dict:
    """Return the queue's numbers and its annotators' (any member).

    Honeypot numbers go to reviewers and leads only: an annotator watching their own count
    rise would learn which task was one.
    """
    reveal = role_can(require(user, queue.project, Capability.VIEW), Capability.REVIEW)
    submissions = TaskSubmission.objects.filter(queue=queue)
    submitters = submissions.values("annotator_id")
    images = QueueItem.objects.filter(queue=queue, honeypot__isnull=True).values("image_id")
    decisions = ReviewDecision.objects.filter(
        annotation__image_id__in=images, annotation__author_id__in=submitters
    )
    return {
        "queue": _queue_summary(queue, reveal_honeypots=reveal),
        "honeypot_pass": HONEYPOT_PASS,
        "annotators": _annotator_rows(
            submissions=submissions,
            decisions=decisions,
            consensus=ConsensusResult.objects.filter(queue=queue),
            reveal_honeypots=reveal,
            names=_names(queue.project),
        ),  # fmt: skip
    }


def project_quality_stats(*, user, project: Project) -> dict:
    """Return every queue's numbers and each annotator's over the whole project (any member)."""
    reveal = role_can(require(user, project, Capability.VIEW), Capability.REVIEW)
    queues = AnnotationQueue.objects.filter(project=project).order_by("-created_at", "-id")
    return {
        "queues": [_queue_summary(q, reveal_honeypots=reveal) for q in queues],
        "honeypot_pass": HONEYPOT_PASS,
        "annotators": _annotator_rows(
            submissions=TaskSubmission.objects.filter(queue__project=project),
            decisions=ReviewDecision.objects.filter(annotation__image__project=project),
            consensus=ConsensusResult.objects.filter(queue__project=project),
            reveal_honeypots=reveal,
            names=_names(project),
        ),  # fmt: skip
    }


def queue_image_quality(*, user, queue: AnnotationQueue) -> dict:
    """Return the queue's per-image quality: consensus agreement and honeypot scores.

    Reviewers and leads only (Forbidden otherwise): it names the honeypot images and
    compares annotators' work. Never the gold answers themselves. ``consensus``: per image,
    the agreement, each annotator's mean IoU with the others, and whether it was merged.
    ``honeypots``: per honeypot image, each annotator's score and whether it passed.
    """
    require_reviewer(user, queue.project)
    names = _names(queue.project)

    def name(user_id) -> str:
        return names.get(user_id, "a former member") if user_id else "a former member"

    consensus = [
        {
            "image": r.image,
            "agreement": r.agreement,
            "annotators": sorted(
                ((name(int(u)), r.per_annotator.get(str(u))) for u in r.annotators),
                key=lambda pair: pair[0].lower(),
            ),
            "merged_at": r.merged_at,
        }
        for r in ConsensusResult.objects.filter(queue=queue)
        .select_related("image")
        .order_by("agreement", "image_id")
    ]
    answers: dict[int, list[dict]] = defaultdict(list)
    for s in (
        TaskSubmission.objects.filter(queue=queue, honeypot_score__isnull=False)
        .select_related("item")
        .order_by("submitted_at", "id")
    ):
        answers[s.item.honeypot_id].append(
            {
                "annotator": name(s.annotator_id),
                "score": s.honeypot_score,
                "passed": s.honeypot_score >= HONEYPOT_PASS,
                "submitted_at": s.submitted_at,
            }
        )
    honeypots = [
        {
            "image": h.image,
            "position": h.position,
            "answers": answers.get(h.pk, []),
            "mean_score": mean(a["score"] for a in answers[h.pk]) if answers.get(h.pk) else None,
        }
        for h in Honeypot.objects.filter(queue=queue).select_related("image").order_by("position")
    ]
    return {"consensus": consensus, "honeypots": honeypots, "honeypot_pass": HONEYPOT_PASS}
