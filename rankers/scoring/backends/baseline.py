"""The BASELINE scorer: transparent word lists plus VADER sentiment and alt-profanity-check.

This is a baseline, not a classifier of the paper's attributes. It exists so that an offline demo ranks something
and so that the ranking path can be exercised end to end without a model or a network service. Every score is a
readable formula of word-list hits (saturating, ``hits / (hits + half)``), sentiment and profanity probability; see
``docs/rankers.md`` for its limits (English only, no negation or sarcasm handling, "we" counts as affinity even
in "we vs them", any question mark counts as curiosity). Use the ``transformers``, ``llm`` or ``http`` backend for
a study.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rankers.scoring import attributes as A
from rankers.scoring.backends.base import Scores


def _terms(*words: str) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![\w'])(?:{alternatives})(?![\w'])")


REASONING_TERMS = _terms(
    "because", "therefore", "thus", "hence", "since", "so that", "which means", "this means", "as a result",
    "consequently", "evidence", "data", "study", "studies", "research", "according to", "for example",
    "for instance", "in fact", "the reason", "reasons", "statistics", "percent", "source", "sources",
)  # fmt: skip
FIRST_PERSON = _terms("i", "i'm", "i've", "i'd", "i'll", "me", "my", "mine", "myself")
STORY_TERMS = _terms(
    "when i", "years ago", "i remember", "i grew up", "grew up", "my mom", "my dad", "my mother", "my father",
    "my family", "my wife", "my husband", "my son", "my daughter", "my kids", "my friend", "happened to me",
    "my experience", "in my experience", "i used to", "i worked", "i lived",
)  # fmt: skip
CURIOSITY_TERMS = _terms(
    "why", "how come", "what do you think", "do you think", "curious", "i wonder", "wondering", "could you explain",
    "can you explain", "help me understand", "what if", "any thoughts", "genuinely asking", "what makes you",
)  # fmt: skip
COMPASSION_TERMS = _terms(
    "sorry", "sorry for your loss", "condolences", "hope you", "take care", "sending love", "thoughts are with",
    "i feel for", "heartbreaking", "that must be", "must have been hard", "hugs", "support you", "here for you",
    "understand how", "understand why", "empathy", "compassion", "care about", "feel that way",
)  # fmt: skip
RESPECT_TERMS = _terms(
    "thank you", "thanks", "appreciate", "respect", "fair point", "good point", "great point", "you're right",
    "you are right", "valid point", "well said", "i agree", "agreed", "well put", "i see your point",
    "i hear you", "to be fair", "grateful", "thank you for sharing",
)  # fmt: skip
AFFINITY_TERMS = _terms(
    "we", "us", "our", "ours", "together", "both of us", "common ground", "in common", "share", "shared",
    "same boat", "as well", "too", "all of us", "community", "neighbors", "neighbours", "fellow",
)  # fmt: skip
NUANCE_TERMS = _terms(
    "however", "although", "on the other hand", "but", "while", "it depends", "complicated", "complex", "nuanced",
    "both sides", "partly", "to some extent", "not always", "in some cases", "that said",
)  # fmt: skip
INSULT_TERMS = _terms(
    "idiot", "idiots", "stupid", "moron", "morons", "dumb", "dumbass", "loser", "losers", "pathetic", "clown",
    "clowns", "fool", "fools", "trash", "garbage", "scum", "worthless", "ignorant", "brainless", "imbecile",
    "shut up",
)  # fmt: skip
SECOND_PERSON = _terms("you", "your", "you're", "u", "ur", "yourself")
GROUP_TERMS = _terms(
    "immigrants", "migrants", "muslims", "jews", "christians", "black people", "white people", "gays",
    "gay people", "trans people", "women", "men", "liberals", "conservatives", "democrats", "republicans",
    "leftists", "right-wingers", "mexicans", "asians", "foreigners", "atheists", "boomers", "millennials",
)  # fmt: skip
DEHUMANIZING = _terms("vermin", "animals", "subhuman", "parasites", "invaders", "savages", "inferior", "filth")
THREAT_TERMS = _terms(
    "kill", "murder", "shoot", "hang", "beat you", "hurt you", "destroy you", "die", "burn", "punch",
    "watch your back", "you'll regret", "bullet", "gonna get you", "string them up",
)  # fmt: skip
FEAR_TERMS = _terms(
    "danger", "dangerous", "threat", "crisis", "collapse", "destroy", "destroying", "catastrophe", "disaster",
    "invasion", "terrifying", "scary", "panic", "apocalypse", "wake up", "before it's too late", "under attack",
    "existential", "doom", "end of america", "they're coming",
)  # fmt: skip
GENERALIZATION_TERMS = _terms(
    "they all", "always", "never", "every single", "everyone", "nobody", "none of them", "typical",
    "those people", "these people", "all of them", "every one of them", "as usual", "all of these",
)  # fmt: skip
SCAPEGOAT_TERMS = _terms(
    "blame", "blamed", "fault", "their fault", "because of them", "thanks to", "responsible for", "ruined",
    "ruining", "caused", "to blame",
)  # fmt: skip
OUTRAGE_TERMS = _terms(
    "disgusting", "outrageous", "outrage", "shameful", "shame on", "disgrace", "disgraceful", "evil", "sick of",
    "how dare", "unacceptable", "corrupt", "despicable", "appalling", "vile", "sickening", "immoral",
)  # fmt: skip
CIVIC_TERMS = _terms(
    "election", "elections", "vote", "voters", "voting", "ballot", "congress", "senate", "senator", "governor",
    "president", "presidential", "white house", "supreme court", "democrat", "democrats", "republican",
    "republicans", "gop", "liberal", "liberals", "conservative", "conservatives", "policy", "policies",
    "government", "legislation", "bill", "law", "lawmakers", "campaign", "politics", "political", "tax", "taxes",
    "immigration", "border", "abortion", "climate", "gun", "guns", "police", "inflation", "economy", "tariffs",
    "healthcare", "protest", "rights", "trump", "biden", "harris", "israel", "ukraine", "military",
)  # fmt: skip
THEM_TERMS = _terms("they", "them", "their")
ALIENATION_TERMS = _terms(
    "those people", "these people", "not one of us", "don't belong", "go back", "real americans", "outsiders",
    "people like them", "us vs them", "us versus them",
)  # fmt: skip


def saturate(hits: float, half: float) -> float:
    """0 for no hits, 0.5 at ``half`` hits, approaching 1."""
    return hits / (hits + half) if hits > 0 else 0.0


@dataclass(frozen=True)
class TextSignals:
    """The two model outputs the formulas use, besides word lists."""

    compound: float  # VADER compound sentiment in [-1, 1]
    profanity: float  # alt-profanity-check probability in [0, 1]


def lexicon_scores(text: str, signals: TextSignals) -> Scores:
    """All attributes of ``ALL`` for one text, from word lists and the text's signals. Pure."""
    t = text.lower()

    def n(pattern: re.Pattern[str]) -> int:
        return len(pattern.findall(t))

    negative = max(0.0, -signals.compound)
    positive = max(0.0, signals.compound)
    angry = 0.5 + 0.5 * negative  # word-list hits count more in a negative text
    has_you = 1.0 if n(SECOND_PERSON) else 0.0
    has_group = 1.0 if n(GROUP_TERMS) else 0.0

    toxicity = 1.0 - (1.0 - signals.profanity) * (1.0 - 0.35 * negative)
    insult = 1.0 - (1.0 - saturate(n(INSULT_TERMS), 0.8)) * (1.0 - 0.6 * signals.profanity * max(has_you, has_group))
    identity = max(has_group * (0.5 * negative + 0.5 * signals.profanity), saturate(n(DEHUMANIZING), 1.0) * angry)
    civil = 1.0 - toxicity  # bridging attributes are "without disrespect or provocation"

    return {
        A.REASONING: saturate(n(REASONING_TERMS), 1.5) * civil,
        A.PERSONAL_STORY: saturate(0.5 * n(FIRST_PERSON) + n(STORY_TERMS), 2.0) * civil,
        A.CURIOSITY: saturate(0.8 * t.count("?") + n(CURIOSITY_TERMS), 1.5) * civil,
        A.COMPASSION: (0.85 * saturate(n(COMPASSION_TERMS), 1.0) + 0.15 * positive) * civil,
        A.RESPECT: (0.85 * saturate(n(RESPECT_TERMS), 1.0) + 0.15 * positive) * civil,
        A.AFFINITY: saturate(n(AFFINITY_TERMS), 2.0) * civil,
        A.NUANCE: saturate(n(NUANCE_TERMS), 1.5) * civil,
        A.TOXICITY: toxicity,
        A.INSULT: insult,
        A.IDENTITY_ATTACK: identity,
        A.THREAT: saturate(n(THREAT_TERMS), 1.0) * angry,
        A.FEARMONGERING: saturate(n(FEAR_TERMS), 1.5) * angry,
        A.GENERALIZATION: saturate(n(GENERALIZATION_TERMS), 1.5) * (0.5 + 0.5 * has_group),
        A.SCAPEGOATING: saturate(n(SCAPEGOAT_TERMS), 1.0) * angry,
        A.MORAL_OUTRAGE: saturate(n(OUTRAGE_TERMS) + 0.3 * t.count("!"), 1.0) * angry,
        A.ALIENATION: saturate(0.3 * n(THEM_TERMS) + n(ALIENATION_TERMS) + n(DEHUMANIZING), 1.5) * angry,
        A.CIVIC: saturate(n(CIVIC_TERMS) + 0.5 * n(GROUP_TERMS), 1.0),
    }


class BaselineBackend:
    """Baseline lexicon/sentiment scorer (see the module docstring). Loads its two small models on first use."""

    name = "baseline-v1"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._vader: Any = None
        self._profanity: Any = None

    def _models(self) -> tuple[Any, Any]:
        with self._lock:
            if self._vader is None:
                from profanity_check import predict_prob
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                self._vader, self._profanity = SentimentIntensityAnalyzer(), predict_prob
        return self._vader, self._profanity

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        if not texts:
            return []
        vader, predict_prob = self._models()
        profanity = predict_prob(list(texts))
        wanted = set(attributes)
        results: list[Scores | None] = []
        for text, prob in zip(texts, profanity, strict=True):
            signals = TextSignals(compound=vader.polarity_scores(text)["compound"], profanity=float(prob))
            scores = lexicon_scores(text, signals)
            results.append({k: min(1.0, max(0.0, v)) for k, v in scores.items() if k in wanted})
        return results
