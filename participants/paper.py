"""The arms of the PRC paper's field experiment, as the demo seed and the tests set them up."""

from __future__ import annotations

from typing import NamedTuple


class PaperArm(NamedTuple):
    slug: str  # also the ranker key
    name: str
    allocation_weight: int
    is_control: bool


# Control takes twice the share of each treatment: 2:1:1:1:1:1.
PAPER_ARMS = [
    PaperArm("control", "Control", 2, True),
    PaperArm("uprank_bridging", "Uprank Bridging", 1, False),
    PaperArm("bridging_downrank_toxic", "Uprank Bridging, Downrank Toxic", 1, False),
    PaperArm("challenging_stereotypes", "Challenging Stereotypes", 1, False),
    PaperArm("diverse_approval", "Diverse Approval", 1, False),
    PaperArm("add_news", "Add News", 1, False),
]
