"""The LLM annotator of candidate posts: the prompt of the paper's sections 3.3 and 3.2, the validation of its JSON
reply, and the calls through the ``openai`` client with retries, a concurrency bound and cost accounting.

One chat completion per post asks for the Challenging Stereotypes schema (section 3.3: the quality flags, political
orientation, nine issue opinions, ideologically surprising, bridging) and the Diverse Approval scores (section 3.2:
how valuable, interesting and engaging an average Republican and an average Democrat would find the post, and
whether it is of national interest). A reply is used only when ``parse_reply`` accepts it: a JSON object with
every field present and of the right type and range. Anything else (not JSON, a missing field, an orientation of
9, an HTTP error, a timeout) is retried up to ``attempts`` times and then reported as a failure, never as an
annotation. Every call's tokens count, the invalid ones too (``rankers.scoring.usage``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from rankers.scoring import usage as accounting

logger = logging.getLogger(__name__)

# The prompt's boolean flags that the quality filters of section 3.3 read, stored as ``PostAnnotation.quality``.
QUALITY_FLAGS = (
    "has_enough_context",
    "is_political_social",
    "is_niche",
    "is_logistical",
    "is_frivolous",
    "is_sarcastic",
    "is_outrage",
    "is_conspiratorial",
    "is_pessimistic",
    "is_nsfw",
)
# The nine baseline-survey issues of the prompt (``opinion_<issue>``), each 1..5 or null.
ISSUES = ("trump", "media", "immigration", "abortion", "israel", "climate", "racism", "military", "economy")

ISSUE_SCALES = {
    "trump": (
        "Highly favorable views of Donald Trump",
        "Somewhat favorable views of Donald Trump",
        "Neutral views towards Donald Trump",
        "Somewhat unfavorable views of Donald Trump",
        "Strongly unfavorable views of Donald Trump",
    ),
    "media": (
        "Strongly trusts mainstream media",
        "Somewhat trusts mainstream media",
        "Neither trusts nor distrusts mainstream media",
        "Somewhat distrusts mainstream media",
        "Strongly distrusts mainstream media",
    ),
    "immigration": (
        "Favors greatly increasing immigration",
        "Favors somewhat increasing immigration",
        "Favors keeping immigration levels about the same",
        "Favors somewhat decreasing immigration",
        "Favors greatly decreasing immigration",
    ),
    "abortion": (
        "Strongly supports a legal right to abortion",
        "Somewhat supports a legal right to abortion",
        "Neither supports nor opposes",
        "Somewhat opposes a legal right to abortion",
        "Strongly opposes a legal right to abortion",
    ),
    "israel": (
        "Strongly supports Israel",
        "Somewhat supports Israel",
        "Neither supports nor opposes Israel",
        "Somewhat opposes Israel",
        "Strongly opposes Israel",
    ),
    "climate": (
        "Extremely concerned about climate change",
        "Somewhat concerned about climate change",
        "Moderately concerned about climate change",
        "Only a little concerned about climate change",
        "Not at all concerned about climate change",
    ),
    "racism": (
        "Racism against Black Americans is a major problem",
        "Racism against Black Americans is a significant problem",
        "Racism against Black Americans is a moderate problem",
        "Racism against Black Americans is only a slight problem",
        "Racism against Black Americans is not a problem at all",
    ),
    "military": (
        "Strongly supports the U.S. military",
        "Somewhat supports the U.S. military",
        "Neutral towards the U.S. military",
        "Somewhat opposes the U.S. military",
        "Strongly opposes the U.S. military",
    ),
    "economy": (
        "Feels extremely positive about the current U.S. economic situation",
        "Feels somewhat positive",
        "Feels neither positive nor negative",
        "Feels somewhat negative",
        "Feels extremely negative",
    ),
}

PLATFORM_NAMES = {"facebook": "Facebook", "reddit": "Reddit", "twitter": "Twitter/X"}
MAX_POST_CHARS = 6000  # a long article's first screens say what it is about; the rest only costs tokens


@dataclass(frozen=True)
class Annotation:
    """A validated reply: the values ``PostAnnotation``'s LLM columns hold."""

    quality: dict[str, float]  # flag -> probability (prompt version 1's true/false as 1.0/0.0)
    political_orientation: int | None  # 1 = extremely liberal .. 7 = extremely conservative
    issue_opinions: dict[str, int | None]
    ideologically_surprising: bool
    bridging: bool
    approval_republican: float
    approval_democrat: float
    national_interest: bool


class InvalidReply(ValueError):
    """An LLM reply that is not a valid annotation; the message says what is wrong, for the failure record."""


def _scale(lines: Sequence[str]) -> str:
    return "\n".join(f"  - {5 - i} - {line}." for i, line in enumerate(lines)) + "\n  null - Not applicable."


def build_prompt_v1(post: str, platform: str) -> str:
    """The paper's section 3.3 prompt, with the orientation numbered 1 (liberal) to 7 (conservative) and the
    section 3.2 questions (party approval, national interest) added as three more fields."""
    name = PLATFORM_NAMES.get(platform, platform)
    opinions = ",\n".join(
        f'"opinion_{issue}": int{{1-5}} or null <\n{_scale(ISSUE_SCALES[issue])}>' for issue in ISSUES
    )
    return f"""You will be given a post from {name}. Your task is to explain the post along with any associated \
image(s), as well as provide some additional analysis as specified below. The goal is to identify what kinds of \
individuals are most aligned with the content and views expressed in the post. If the post lacks \
political/cultural/civic content (broadly construed), you may acknowledge this in the relevant fields. Provide a \
JSON response in exactly the following format, and do not add any other fields.

{{
"explanation": <explain the post and any attached images; watch out for sarcasm/ironic posts>,
"tone": <analyze the tone and sentiment of the post>,
"ideological_analysis": <analyze the post for its political/ideological content, and note any groups/ideological \
views being promoted or criticized (explicitly or implicitly). Even if a post is facially neutral, be sure to note \
if it is likely to be viewed especially favorably or skeptically by any particular political identity/group given \
the broader context of U.S. political and cultural opinions. Alternatively, note if the post would have broad \
buy-in from most Americans, except for the strongest partisans/most polarized.>,
"has_enough_context": <true if the point of the post can be understood by a general U.S. audience, false otherwise>,
"is_political_social": <true if the post is political in nature (broadly construed, includes \
economic/social/culture war issues), false otherwise>,
"is_ideologically_surprising": <Scoring guideline: Determine if the post contains ideologically surprising \
information that challenges ideological stereotypes or pre-existing political/cultural beliefs. true if the post \
contains ideologically surprising information. Examples:
  - A traditionally right-leaning individual making "pro-choice" statements.
  - A Democratic politician rejecting reparations for African-Americans.
  - "MAGA Patriots" actively opposing white supremacists at a Trump rally.
  - A well-known liberal figure expressing skepticism about immigration.
  - Texas producing more solar energy than California, contrary to expectations.
  - A post showing strong support for both LGBT rights and the U.S. military.
  - A prominent conservative expressing support for a Democratic politician.
false if not ideologically surprising or if it reinforces typical ideological views. Examples:
  - A Republican politician advocating for lower taxes.
  - A liberal-leaning individual advocating for stricter gun control measures.
  - Environmental activists burning down a fossil fuel office.
  - Non-ideological content, such as a woman reuniting with her long-lost twin sisters.>,
"political_orientation": int{{1-7}} or null <
  - 1 - Extremely liberal.
  - 2 - Liberal.
  - 3 - Slightly liberal.
  - 4 - Moderate.
  - 5 - Slightly conservative.
  - 6 - Conservative.
  - 7 - Extremely conservative.
  null - Not applicable.>,
{opinions},
"is_niche": <true if the post is very niche, lacks enough context, too technical, or is not relevant to a general \
U.S. audience, false otherwise>,
"is_logistical": <true if the post primarily serves to advertise an event or other media without much commentary, \
false otherwise>,
"is_frivolous": <true if the post is frivolous, trivial, or lacks substance, false otherwise>,
"is_sarcastic": <true if the post is sarcastic or satirical, false otherwise>,
"is_outrage": <true if the post is inflammatory, antagonistic, or provokes outrage, resentment, or strong negative \
emotion, false otherwise>,
"is_conspiratorial": <true if the post is sincerely conspiratorial or promotes/reflects a lack of social trust, \
false otherwise>,
"is_pessimistic": <true if the post reflects or promotes a negative or pessimistic outlook, false otherwise>,
"is_bridging": <true if the post promotes trust, empathy, or understanding across the political/ideological \
spectrum in particular, false otherwise>,
"is_nsfw": <true if the post contains NSFW content, false otherwise>,
"approval_republican": <a number from 1 to 5: how valuable, interesting, and engaging an average Republican would \
find this post (1 = not at all, 5 = extremely)>,
"approval_democrat": <a number from 1 to 5: how valuable, interesting, and engaging an average Democrat would find \
this post (1 = not at all, 5 = extremely)>,
"national_interest": <true if the content of the post would be of national interest to a U.S. audience, false \
otherwise (for example city or state level issues)>
}}

Here is the {name} post:

```
{post[:MAX_POST_CHARS]}
```"""


_FLAG_FIELD = re.compile(r'"(?P<flag>\w+)": <true if (?P<what>.*?), false otherwise>', re.DOTALL)


def build_prompt_v2(post: str, platform: str) -> str:
    """Version 1 with each quality flag asked as a probability from 0 to 1, as section 3.3 describes its filters
    ("Each scraped post receives probability scores (ranging from 0 to 1) ... posts are eligible for addition if
    they fall within acceptable thresholds"); the other true/false fields stay as they were."""

    def probability(match: re.Match[str]) -> str:
        if match["flag"] not in QUALITY_FLAGS:
            return match[0]
        return f'"{match["flag"]}": <a number from 0 to 1: the probability that {match["what"]}>'

    return _FLAG_FIELD.sub(probability, build_prompt_v1(post, platform))


# Prompt versions that ``PRC_ANNOTATION_PROMPT_VERSION`` may name; a changed prompt gets a new version, so each
# annotation says which prompt made it.
PROMPTS: dict[str, Callable[[str, str], str]] = {
    "prc-s3.3-s3.2-v1": build_prompt_v1,
    "prc-s3.3-s3.2-v2": build_prompt_v2,
}
# A post is political (the civic classifier's training label) when the LLM gives ``is_political_social`` at least
# this probability (a true/false answer of prompt version 1 counts as 1 or 0).
POLITICAL_PROBABILITY = 0.5


def is_political(quality: Mapping[str, Any] | None) -> bool:
    """Whether an annotation's quality flags call the post political or social."""
    value = (quality or {}).get("is_political_social")
    return isinstance(value, int | float) and value >= POLITICAL_PROBABILITY


def post_for_prompt(title: str, text: str, media_alt_text: str) -> str:
    """What the LLM reads of a post: title, text, and the description of its images."""
    parts = [title.strip(), text.strip()]
    if media_alt_text.strip():
        parts.append(f"[Image: {media_alt_text.strip()}]")
    return "\n\n".join(part for part in parts if part)


def _probability(raw: dict[str, Any], name: str) -> float:
    """A quality flag: a probability from 0 to 1 (prompt version 2), or true/false (version 1) as 1 or 0."""
    value = raw.get(name, ...)
    if isinstance(value, bool):
        return float(value)
    if value is ... or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidReply(f"{name} is missing" if value is ... else f"{name} is not a probability or true/false")
    if not 0 <= value <= 1:
        raise InvalidReply(f"{name} is {value}, outside 0..1")
    return float(value)


def _flag(raw: dict[str, Any], name: str) -> bool:
    value = raw.get(name, ...)
    if not isinstance(value, bool):
        raise InvalidReply(f"{name} is missing or not true/false" if value is ... else f"{name} is not true/false")
    return value


def _integer(raw: dict[str, Any], name: str, low: int, high: int) -> int | None:
    if name not in raw:
        raise InvalidReply(f"{name} is missing")
    value = raw[name]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise InvalidReply(f"{name} is not a whole number")
    if not low <= value <= high:
        raise InvalidReply(f"{name} is {value}, outside {low}..{high}")
    return int(value)


def _score(raw: dict[str, Any], name: str) -> float:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidReply(f"{name} is missing or not a number")
    if not 1 <= value <= 5:
        raise InvalidReply(f"{name} is {value}, outside 1..5")
    return float(value)


def parse_reply(content: str | None) -> Annotation:
    """The annotation in an LLM reply; ``InvalidReply`` unless it is a JSON object with every field valid."""
    body = (content or "").strip()
    if body.startswith("```"):  # some models fence JSON even when asked not to
        body = body.strip("`").removeprefix("json").strip()
    if not body:
        raise InvalidReply("empty reply")
    try:
        raw = json.loads(body)
    except ValueError as exc:
        raise InvalidReply(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidReply(f"a JSON {type(raw).__name__}, not an object")
    return Annotation(
        quality={name: _probability(raw, name) for name in QUALITY_FLAGS},
        political_orientation=_integer(raw, "political_orientation", 1, 7),
        issue_opinions={issue: _integer(raw, f"opinion_{issue}", 1, 5) for issue in ISSUES},
        ideologically_surprising=_flag(raw, "is_ideologically_surprising"),
        bridging=_flag(raw, "is_bridging"),
        approval_republican=_score(raw, "approval_republican"),
        approval_democrat=_score(raw, "approval_democrat"),
        national_interest=_flag(raw, "national_interest"),
    )


class Budget:
    """What may still be spent today; shared by a batch's threads. ``allows`` before a call, ``spend`` after."""

    def __init__(self, remaining: float) -> None:
        self.remaining = remaining
        self._lock = threading.Lock()

    def allows(self) -> bool:
        with self._lock:
            return self.remaining > 0

    def spend(self, cost: float) -> None:
        with self._lock:
            self.remaining -= cost


@dataclass
class Outcome:
    """What annotating one post came to: an annotation, or the reason it failed; with what every attempt cost.

    ``annotation`` None and ``error`` empty means no call was made (the budget was spent first)."""

    key: Any
    annotation: Annotation | None = None
    error: str = ""
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    @property
    def budget_stopped(self) -> bool:
        return self.annotation is None and not self.error


class LLMAnnotator:
    """Annotates posts through an OpenAI-compatible chat server, ``concurrency`` requests at a time."""

    def __init__(
        self,
        *,
        model: str,
        prompt_version: str,
        base_url: str | None = None,
        api_key: str = "not-needed",
        timeout_s: float = 60.0,
        attempts: int = 3,
        concurrency: int = 16,
        prices: accounting.Prices | None = None,
        http_client: Any = None,
    ) -> None:
        from openai import OpenAI

        if prompt_version not in PROMPTS:
            raise ValueError(f"unknown prompt version {prompt_version!r}; known: {', '.join(PROMPTS)}")
        self.model = model
        self.prompt_version = prompt_version
        self.build_prompt = PROMPTS[prompt_version]
        self.attempts = max(1, attempts)
        self.concurrency = max(1, concurrency)
        self.prices = prices or accounting.Prices()
        # Retries are ours (an invalid reply is retried like an error), so the client makes none of its own.
        self.client = OpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0, http_client=http_client
        )

    @property
    def usage_name(self) -> str:
        """The ``ScorerUsage.backend`` of annotation calls: kept apart from the scorers' own LLM usage."""
        return f"annotation:{self.model}"

    def annotate(
        self, key: Any, post: str, platform: str, budget: Budget, usage: accounting.Usage | None = None
    ) -> Outcome:
        """Ask about one post until a reply is valid or the attempts run out; stops early when ``budget`` is spent.
        Every call is also added to ``usage``."""
        outcome = Outcome(key)
        usage = usage if usage is not None else accounting.Usage()
        prompt = self.build_prompt(post, platform)
        while outcome.attempts < self.attempts and budget.allows():
            outcome.attempts += 1
            try:
                completion = self.client.chat.completions.create(
                    model=self.model,
                    temperature=0,
                    response_format={"type": "json_object"},
                    messages=[{"role": "user", "content": prompt}],
                )
            except Exception as exc:
                outcome.error = f"request failed: {type(exc).__name__}: {str(exc)[:200]}"
                self._count(outcome, None, budget, usage, ok=False)
                continue
            content = completion.choices[0].message.content if completion.choices else None
            try:
                outcome.annotation = parse_reply(content)
            except InvalidReply as exc:
                outcome.error = f"invalid reply: {exc}"
                self._count(outcome, completion.usage, budget, usage, ok=False)
                continue
            outcome.error = ""
            self._count(outcome, completion.usage, budget, usage, ok=True)
            return outcome
        if outcome.attempts and outcome.error:
            outcome.error = f"{outcome.error} (after {outcome.attempts} attempts)"
        return outcome

    def _count(self, outcome: Outcome, reply_usage: Any, budget: Budget, usage: accounting.Usage, *, ok: bool) -> None:
        prompt = int(getattr(reply_usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(reply_usage, "completion_tokens", 0) or 0)
        cost = accounting.call_cost(prompt, completion, self.prices)
        outcome.prompt_tokens += prompt
        outcome.completion_tokens += completion
        outcome.cost += cost
        usage.add(prompt_tokens=prompt, completion_tokens=completion, cost=cost, ok=ok)
        budget.spend(cost)

    def annotate_many(
        self, posts: Sequence[tuple[Any, str, str]], budget: Budget, usage: accounting.Usage
    ) -> Iterator[Outcome]:
        """Outcomes of ``(key, post, platform)`` as they complete, ``concurrency`` posts in flight at a time; every
        call is added to ``usage``."""
        if not posts:
            return
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(posts)), thread_name_prefix="annotator") as pool:
            futures = [pool.submit(self.annotate, key, post, platform, budget, usage) for key, post, platform in posts]
            for future in as_completed(futures):
                yield future.result()
