"""Online stratified permuted-block randomization, as pure functions.

The allocation sequence of a stratum is a series of blocks. Each block holds every arm as many
times as its allocation weight (2:1:1:1:1:1 gives a block of 7), in an order that depends only on
the study's secret seed, the stratum and the block's index:

1. ``block_template`` lists the arms, each repeated by its weight, in the study's arm order.
2. ``block_order`` shuffles that template with a Fisher-Yates shuffle whose random draws are
   HMAC-SHA256(seed, "stratum|block|step"): no global state, no dependence on the ``random``
   module's implementation, so the sequence regenerates identically years later.
3. ``allocation_at`` answers "which arm sits at position n of this stratum"; the service takes the
   next free position under a row lock and asks this function.

A stratum is named by its opaque code (``stratum_code``: an HMAC of the label under the seed), never
by the screener answers behind it: assignments and audit events are rows that cannot be deleted, and
a participant's erasure must not leave ``party=democrat`` beside their id.

What the secret seed does and does not hide: without the seed (only its hash is shown) nobody can
compute the order inside a block. But blocks have a fixed size (7 for 2:1:1:1:1:1), so whoever sees
the earlier allocations of a stratum's current block knows which arms are left in it, and its last
allocation for certain; the fewer places left in a block, the better the guess. Concealment therefore
rests on nobody who enrols participants seeing assignments as they happen (no page shows an arm, vendors
never learn it), not on the sequence being unpredictable to someone who watches it. Anyone holding the
seed can regenerate the whole sequence with ``allocation_sequence`` and check it against the stored
assignments (``manage.py audit_randomization``). The arm order and weights must stay fixed once
recruitment starts: changing them changes the sequence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prc_site.lib.seeded import seeded_digest, seeded_int

ALL_STRATUM = "all"
# Test participants are allocated from their own sequences ("test:" + stratum), same seed, never the real ones.
TEST_PREFIX = "test:"
Weights = Sequence[tuple[str, int]]


def block_template(weights: Weights) -> list[str]:
    """The arms of one block before shuffling: each arm key repeated by its weight."""
    if not weights or any(weight <= 0 for _, weight in weights):
        raise ValueError("every arm needs a positive allocation weight")
    return [key for key, weight in weights for _ in range(weight)]


def _draw(seed: str, stratum: str, block_index: int, step: int, upper: int) -> int:
    """A deterministic integer in [0, upper) from the seed (bias below 2**-60, far under any audit's reach)."""
    return seeded_int(seed, f"{stratum}|{block_index}|{step}", upper)


def block_order(seed: str, stratum: str, block_index: int, weights: Weights) -> list[str]:
    """The shuffled block ``block_index`` of ``stratum``."""
    order = block_template(weights)
    for i in range(len(order) - 1, 0, -1):
        j = _draw(seed, stratum, block_index, i, i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def allocation_at(seed: str, stratum: str, weights: Weights, position: int) -> str:
    """The arm key at ``position`` (0-based) of the stratum's allocation sequence."""
    if position < 0:
        raise ValueError("position must be >= 0")
    size = sum(weight for _, weight in weights)
    block_index, offset = divmod(position, size)
    return block_order(seed, stratum, block_index, weights)[offset]


def allocation_sequence(seed: str, stratum: str, weights: Weights, n: int) -> list[str]:
    """The first ``n`` allocations of the stratum, for audit and tests."""
    size = sum(weight for _, weight in weights)
    blocks = (n + size - 1) // size
    sequence = [key for index in range(blocks) for key in block_order(seed, stratum, index, weights)]
    return sequence[:n]


def stratum_code(seed: str, label: str) -> str:
    """The opaque name of the stratum ``label`` (e.g. ``party=democrat``) in one study: ``s_`` + 16 hex digits.

    Anyone holding the seed can tell which label a code stands for by computing the codes of the
    known labels; without it the code reveals nothing.
    """
    return "s_" + seeded_digest(seed, f"stratum\x00{label}").hex()[:16]


def stratum_key(fields: Sequence[str], answers: Mapping[str, object]) -> str:
    """The stratum label from the screener answers, e.g. ``party=democrat``; ``all`` when unstratified.

    A missing answer is its own stratum (``party=``) rather than an error: it keeps balance within
    the people who did not answer.
    """
    if not fields:
        return ALL_STRATUM
    return "|".join(f"{field}={str(answers.get(field, '') or '').strip().lower()}" for field in fields)
