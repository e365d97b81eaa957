"""The slate log as export datasets: one row per slate, and one row per item of a slate.

Registered with ``participants.exports`` in ``RankersConfig.ready()``. Both stream from a server-side
cursor in served order (the ``(study_id, served_at)`` index), so the slate items of a whole study (the
paper's 196 million) go out in bounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from participants.exports import Column, Dataset, ExportOptions
from participants.models import Study

_REAL = "s.participant_id NOT IN (SELECT public_id FROM participants_participant WHERE is_test)"

SLATE_COLUMNS = [
    Column("slate", "string", "Slate id (made when served)."),
    Column("served_at", "timestamp", "When the ranking request was answered."),
    Column("participant", "string", "Pseudonymous id."),
    Column("arm", "string", "Assigned arm (slug)."),
    Column("effective_arm", "string", "Arm whose ranker was in effect (control during the baseline)."),
    Column("phase", "string", "baseline, not_started (arm not started on this platform) or assigned."),
    Column("platform", "string", "facebook, reddit or twitter."),
    Column("content_type", "string", "post or comment."),
    Column("slate_pass", "int", "Which pass of the platform (Facebook posts: 1 = first 10, 2 = next 35)."),
    Column("n_items", "int", "Items in the request."),
    Column("n_added", "int", "Items the ranker inserted."),
    Column("n_deleted", "int", "Items the ranker removed."),
    Column("n_scored", "int", "Items scored on every attribute the ranker reads (the dose)."),
    Column("nrc", "float", "Normalized rank change (mean |new rank - old rank| of kept items / slate length)."),
    Column("rbo", "float", "Rank-biased overlap of original and returned order (p = 0.9)."),
    Column("intervention_on", "bool", "The arm's ranking was applied (false: original order returned)."),
    Column("fallback_reason", "string", "Why the original order was returned, if it was."),
    Column("ranker_ms", "float", "Time the ranker took."),
    Column("served_ms", "float", "Receipt to answer, hold included."),
]
SLATES_SQL = f"""
SELECT s.uid::text, s.served_at, s.participant_id, s.arm, s.effective_arm, s.phase, s.platform, s.content_type,
       s.slate_pass, s.n_items, s.n_added, s.n_deleted, s.n_scored, s.nrc, s.rbo, s.intervention_on::text,
       s.fallback_reason, s.ranker_ms, s.served_ms
FROM rankers_slate s WHERE s.study_id = %s AND {_REAL} ORDER BY s.served_at
"""  # noqa: S608 (a constant condition; the study is a parameter)

ITEM_COLUMNS = [
    Column("slate", "string", "Slate id (joins the slates table)."),
    Column("served_at", "timestamp", "When the slate was served."),
    Column("participant", "string", "Pseudonymous id."),
    Column("effective_arm", "string", "Arm whose ranker was in effect."),
    Column("platform", "string", "facebook, reddit or twitter."),
    Column("item_id", "string", "The platform's id of the item."),
    # Items come in the order shown, then the removed ones in their original order.
    Column("original_rank", "int", "Position in the platform's order (1 = top); empty for an inserted item."),
    Column("returned_rank", "int", "Position in the order shown; empty for a removed item."),
    Column("added", "bool", "Inserted by the ranker."),
    Column("deleted", "bool", "Removed by the ranker."),
    Column("source_id", "int", "An inserted post's content source (rankers.ContentSource id)."),
    Column("source_lean", "string", "An inserted post's source lean: left, centre, right or empty (not rated)."),
    Column("annotation_version", "string", "An inserted post's annotation: model and prompt version."),
]
# The items of each slate in the order shown (with each one's original rank), then those the ranker removed.
ITEMS_SQL = f"""
SELECT s.uid::text, s.served_at, s.participant_id, s.effective_arm, s.platform, t.item_id, t.original_rank,
       t.returned_rank, (t.original_rank IS NULL)::text, (t.returned_rank IS NULL)::text,
       (i.value->>'source_id')::bigint, i.value->>'lean', i.value->>'annotation_version'
FROM rankers_slate s
CROSS JOIN LATERAL (
    SELECT r.id AS item_id, array_position(s.original_ids, r.id) AS original_rank, r.n AS returned_rank
    FROM unnest(s.returned_ids) WITH ORDINALITY AS r(id, n)
    UNION ALL
    SELECT d.id, array_position(s.original_ids, d.id), NULL::bigint FROM unnest(s.deleted_ids) AS d(id)
) t
LEFT JOIN LATERAL (
    SELECT e.value FROM jsonb_array_elements(s.inserted) AS e(value) WHERE e.value->>'id' = t.item_id LIMIT 1
) i ON t.original_rank IS NULL
WHERE s.study_id = %s AND {_REAL}
ORDER BY s.served_at
"""  # noqa: S608 (a constant condition; the study is a parameter)


def _slate_columns(study: Study, options: ExportOptions) -> list[Column]:
    return SLATE_COLUMNS


def _slate_query(study: Study, options: ExportOptions) -> tuple[str, Sequence[Any]]:
    return SLATES_SQL, [study.pk]


def _item_columns(study: Study, options: ExportOptions) -> list[Column]:
    return ITEM_COLUMNS


def _item_query(study: Study, options: ExportOptions) -> tuple[str, Sequence[Any]]:
    return ITEMS_SQL, [study.pk]


DATASETS = (
    Dataset(
        "slates", "Slates", "One row per answered ranking request (the slate log).", _slate_columns, query=_slate_query
    ),
    Dataset(
        "slate_items",
        "Slate items",
        "One row per item of a slate: where the platform put it and where the arm's ranker put it.",
        _item_columns,
        query=_item_query,
    ),
)
