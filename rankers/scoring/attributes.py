"""Attribute names shared by the scorer backends and the bridging rankers.

Names are Perspective API's, upper-case, without its ``_EXPERIMENTAL`` suffix (paper, Tables S12-S14).
Table S12 calls GENERALIZATION "Stereotyping"; Perspective's attribute for it is GENERALIZATION_EXPERIMENTAL.
TOXICITY, IDENTITY_ATTACK, INSULT and THREAT are Perspective's production attributes (no suffix).
"""

from __future__ import annotations

# Bridging attributes (Table S12, upper half). NUANCE is in Table S12 but carries no weight in S13/S14.
REASONING = "REASONING"
PERSONAL_STORY = "PERSONAL_STORY"
AFFINITY = "AFFINITY"
COMPASSION = "COMPASSION"
RESPECT = "RESPECT"
CURIOSITY = "CURIOSITY"
NUANCE = "NUANCE"

# Persuasion attributes (Table S12, lower half; proprietary Jigsaw classifiers in the paper).
FEARMONGERING = "FEARMONGERING"
GENERALIZATION = "GENERALIZATION"  # "Stereotyping" in Tables S12 and S14
SCAPEGOATING = "SCAPEGOATING"
MORAL_OUTRAGE = "MORAL_OUTRAGE"
ALIENATION = "ALIENATION"

# Toxicity attributes (Perspective production models).
TOXICITY = "TOXICITY"
IDENTITY_ATTACK = "IDENTITY_ATTACK"
INSULT = "INSULT"
THREAT = "THREAT"

# Civic content (supplementary sections 3.2 and 3.3): "posts about political or social issues". The inserting
# arms read it of the feed's own posts to find those to replace; the paper's classifiers were a fine-tuned
# PoliBERTweet (Diverse Approval) and a RoBERTa political classifier (Challenging Stereotypes).
CIVIC = "CIVIC"

BRIDGING = (REASONING, PERSONAL_STORY, AFFINITY, COMPASSION, RESPECT, CURIOSITY)
PERSUASION = (FEARMONGERING, GENERALIZATION, SCAPEGOATING, MORAL_OUTRAGE, ALIENATION)
TOXIC = (TOXICITY, IDENTITY_ATTACK, INSULT, THREAT)
ALL = (*BRIDGING, NUANCE, *PERSUASION, *TOXIC, CIVIC)

# The paper's wording for each attribute, for documentation and the LLM prompt.
PAPER_NAMES: dict[str, str] = {
    REASONING: "Reasoning",
    PERSONAL_STORY: "Personal story",
    AFFINITY: "Affinity",
    COMPASSION: "Compassion",
    RESPECT: "Respect",
    CURIOSITY: "Curiosity",
    NUANCE: "Nuance",
    FEARMONGERING: "Fearmongering",
    GENERALIZATION: "Stereotyping",
    SCAPEGOATING: "Scapegoating",
    MORAL_OUTRAGE: "Moral outrage",
    ALIENATION: "Alienation",
    TOXICITY: "Toxicity",
    IDENTITY_ATTACK: "Identity attack",
    INSULT: "Insult",
    THREAT: "Threat",
    CIVIC: "Civic (political or social issue)",
}

# Definitions from Table S12 (TOXICITY and THREAT from Perspective's documentation).
DEFINITIONS: dict[str, str] = {
    AFFINITY: "References shared interests, motivations or outlooks between the author and another individual, "
    "group or entity.",
    COMPASSION: "Identifies with or shows concern, empathy, or support for the feelings/emotions of others.",
    CURIOSITY: "Attempts to clarify or ask follow-up questions to better understand another person or idea.",
    NUANCE: "Incorporates multiple points of view in an attempt to provide a full picture or contribute useful "
    "detail and/or context.",
    PERSONAL_STORY: "Includes a personal experience or story as a source of support for the statements made.",
    REASONING: "Makes specific or well-reasoned points to provide a fuller understanding of the topic without "
    "disrespect or provocation.",
    RESPECT: "Shows deference or appreciation to others, or acknowledges the validity of another person.",
    ALIENATION: "Portrays someone as inferior, implies a lack of belonging, or frames the statement in an us vs. "
    "them context.",
    FEARMONGERING: "Deliberately arouses fear or alarm about a particular issue.",
    GENERALIZATION: "Asserts something to be true for either of all members of a certain group or of an indefinite "
    "part of that group.",
    MORAL_OUTRAGE: "Anger, disgust, or frustration directed toward other people or entities who seem to violate the "
    "author's ethical values or standards.",
    SCAPEGOATING: "Blames a person or entity for the wrongdoings, mistakes, or faults of others, especially for "
    "reasons of expediency.",
    TOXICITY: "A rude, disrespectful, or unreasonable comment that is likely to make people leave a discussion.",
    IDENTITY_ATTACK: "Negative or hateful comments targeting someone because of their identity.",
    INSULT: "Insulting, inflammatory, or negative comment towards a person or a group of people.",
    THREAT: "Describes an intention to inflict pain, injury, or violence against an individual or group.",
    CIVIC: "About political or social issues, broadly construed: government, elections, policy, economic, social "
    "or culture-war issues.",
}

_EXPERIMENTAL = frozenset((*BRIDGING, NUANCE, *PERSUASION))


def perspective_name(attribute: str) -> str:
    """The name Perspective API's endpoint expects: experimental attributes carry an ``_EXPERIMENTAL`` suffix."""
    return f"{attribute}_EXPERIMENTAL" if attribute in _EXPERIMENTAL else attribute


def canonical_name(name: str) -> str:
    """Map a label from a model, an LLM or an HTTP service back to our name (case and suffix insensitive)."""
    upper = name.strip().upper().replace(" ", "_").replace("-", "_")
    upper = upper.removesuffix("_EXPERIMENTAL")
    return GENERALIZATION if upper == "STEREOTYPING" else upper


# Table S12's AUC-ROC of Perspective's models on the test sets of the paper's ref. 23, for comparison with a
# validation run (``manage.py validate_scorer``). Toxicity and threat are not in Table S12.
PAPER_AUC: dict[str, float] = {
    AFFINITY: 0.86,
    COMPASSION: 0.91,
    CURIOSITY: 0.87,
    NUANCE: 0.88,
    PERSONAL_STORY: 0.95,
    REASONING: 0.87,
    RESPECT: 0.96,
    ALIENATION: 0.93,
    FEARMONGERING: 0.93,
    GENERALIZATION: 0.88,
    MORAL_OUTRAGE: 0.93,
    SCAPEGOATING: 0.91,
    IDENTITY_ATTACK: 0.97,
    INSULT: 0.97,
}
