"""The statements behind "next task": lock, read what decides it, lease one item.

``queues.queue_next`` runs on every task an annotator takes, so it is kept to three
statements that the database answers from indexes whatever the queue's size:

- ``annotator_state`` locks the annotator's membership (one call at a time per person),
  then reads in one statement whether they may take tasks of the queue, the task they
  hold, the first task returned to them and the first honeypot they have not had. That
  statement is written in SQL: built through the ORM, its five subqueries cost more CPU
  time than everything else in the request.
- ``lease`` gives the first of a queryset of candidates to the annotator with
  ``UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING *``, so two
  annotators asking at once lock different rows and neither reads back what it took.

The candidates (``free_items``) walk the partial index of open regular items in queue
order (``queue_item_open_order``) and stop at the first free one instead of sorting them.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.db.models import BooleanField, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from annotation.models import AnnotationQueue, Honeypot, QueueItem, TaskSkip
from studio.errors import NotFound
from studio.models import Membership

TODO, IN_PROGRESS = QueueItem.Status.TODO.value, QueueItem.Status.IN_PROGRESS.value

# The condition of the partial index ``queue_item_open_order``: open regular items. Written
# out as SQL because SQLite uses a partial index only when the query repeats its condition
# with the same constants (a bound parameter does not match it).
OPEN_REGULAR = RawSQL(  # noqa: S611 - constants only, no input
    f"status IN ('{TODO}', '{IN_PROGRESS}') AND honeypot_id IS NULL",
    (),
    output_field=BooleanField(),
)


def skipped(*, actor, queue: AnnotationQueue) -> QuerySet[TaskSkip]:
    """The actor's skips of the outer item's image (for ``Exists``)."""
    return TaskSkip.objects.filter(queue=queue, annotator=actor, image_id=OuterRef("image_id"))


def free_items(*, actor, queue: AnnotationQueue, now, not_image: int | None) -> QuerySet:
    """Return the items the actor may be leased now, in no order.

    A regular item nobody holds (or returned to the actor, or whose lease ran out), of an
    image the actor has no other replica of, other than ``not_image``. ``OPEN_REGULAR``
    repeats what the arms below imply, for the index.
    """
    free = QueueItem.objects.filter(OPEN_REGULAR, queue=queue).filter(
        Q(status=TODO, returned_to__isnull=True)
        | Q(status=TODO, returned_to=actor)
        | Q(status=IN_PROGRESS, lease_expires_at__lte=now)
    )
    if queue.annotators_per_image > 1:
        # Items the actor holds or has worked: no other replica of those images goes to
        # them. (With one annotator per image an image has one regular item, and a honeypot
        # image none: marking it took its task out of the queue.)
        worked = QueueItem.objects.filter(queue=queue).filter(
            Q(assignee=actor) | Q(returned_to=actor)
        )
        free = free.exclude(
            Q(image_id__in=worked.values("image_id")) & ~Q(pk__in=worked.values("pk"))
        )
    if not_image is not None:
        free = free.exclude(image_id=not_image)
    return free


def annotator_state(*, actor, queue: AnnotationQueue, now, not_image: int | None) -> dict:
    """Lock the actor's membership of the queue's project, then return: ``assigned_any``
    (the queue has assignees), ``assigned_me`` (the actor is one), ``mine`` (the id of the
    task they hold: a live lease, or a honeypot task), ``returned`` (the first task
    returned to them, free, that they did not skip and is not of ``not_image``) and
    ``honeypot`` (the first honeypot of the queue they have not had).

    Precondition: inside a transaction. The lock (PostgreSQL; SQLite lets one writer in at
    a time anyway) makes one call at a time per person: a double click must not lease them
    two replicas of an image (the second call would skip the first's locked row and take
    the next replica). The state is read by a statement of its own, after the lock: read in
    the locking statement it would come from that statement's snapshot, taken before the
    wait, and miss the task the first call leased. Work returned to the actor is theirs
    alone, and no other replica of its image can be theirs (they made its work), so the
    replica rule does not apply to it.
    """
    locked = (
        Membership.objects.select_for_update()
        .filter(project_id=queue.project_id, user=actor)
        .values_list("pk", flat=True)
        .order_by("pk")
        .first()
    )
    if locked is None:  # the role check saw a membership that is gone now
        raise NotFound("Project not found.")
    item, skip, honeypot, assignee = (
        model._meta.db_table
        for model in (QueueItem, TaskSkip, Honeypot, AnnotationQueue.assignees.through)
    )
    params = {
        "queue": queue.pk, "actor": actor.pk,
        "now": connection.ops.adapt_datetimefield_value(now), "todo": TODO,
        "in_progress": IN_PROGRESS, "not_image": not_image,
    }  # fmt: skip
    other_image = "" if not_image is None else "AND r.image_id <> %(not_image)s"
    # Table names come from the models; every value is a parameter.
    sql = f"""
        SELECT
          EXISTS (SELECT 1 FROM {assignee} WHERE annotationqueue_id = %(queue)s),
          EXISTS (SELECT 1 FROM {assignee}
                  WHERE annotationqueue_id = %(queue)s AND user_id = %(actor)s),
          (SELECT m.id FROM {item} m
           WHERE m.queue_id = %(queue)s AND m.assignee_id = %(actor)s
             AND m.status = %(in_progress)s
             AND (m.lease_expires_at > %(now)s OR m.honeypot_id IS NOT NULL)
           ORDER BY m.position, m.replica, m.id LIMIT 1),
          (SELECT r.id FROM {item} r
           WHERE r.queue_id = %(queue)s AND r.returned_to_id = %(actor)s
             AND r.honeypot_id IS NULL
             AND (r.status = %(todo)s
                  OR (r.status = %(in_progress)s AND r.lease_expires_at <= %(now)s))
             AND NOT EXISTS (SELECT 1 FROM {skip} s WHERE s.queue_id = %(queue)s
                             AND s.annotator_id = %(actor)s AND s.image_id = r.image_id)
             {other_image}
           ORDER BY r.position, r.replica, r.id LIMIT 1),
          (SELECT h.id FROM {honeypot} h
           WHERE h.queue_id = %(queue)s
             AND NOT EXISTS (SELECT 1 FROM {item} t
                             WHERE t.honeypot_id = h.id AND t.assignee_id = %(actor)s)
           ORDER BY h.position, h.id LIMIT 1)
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        any_, me, mine, returned, first_honeypot = cursor.fetchone()
    return {"assigned_any": bool(any_), "assigned_me": bool(me), "mine": mine,
            "returned": returned, "honeypot": first_honeypot}  # fmt: skip


def lease(candidates: QuerySet, *, actor, queue: AnnotationQueue, now) -> QueueItem | None:
    """Lease the first of ``candidates`` to the actor in one statement, or return None.

    ``UPDATE ... WHERE id = (SELECT ... LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *``: on
    PostgreSQL two annotators asking at once lock different rows, and neither re-reads
    what it took; SQLite serialises writers (immediate transactions) and ignores the
    lock clause. Django's ``update()`` returns a count, not the row, hence the SQL
    around the ORM's own subquery.
    """
    pick = candidates.select_for_update(skip_locked=True).values("pk")[:1]
    sub, sub_params = pick.query.get_compiler(connection=connection).as_sql()
    ops = connection.ops
    table = ops.quote_name(QueueItem._meta.db_table)
    expires = now + timedelta(minutes=queue.lease_minutes)
    # Only the table name and the ORM's compiled subquery are formatted in; values are
    # parameters.
    sql = (
        f"UPDATE {table} SET status = %s, assignee_id = %s, leased_at = %s, "  # noqa: S608
        f"lease_expires_at = %s WHERE id = ({sub}) RETURNING *"
    )
    params = [
        IN_PROGRESS, actor.pk, ops.adapt_datetimefield_value(now),
        ops.adapt_datetimefield_value(expires), *sub_params,
    ]  # fmt: skip
    item = next(iter(QueueItem.objects.raw(sql, params)), None)
    if item is not None:
        item.queue = queue
    return item
