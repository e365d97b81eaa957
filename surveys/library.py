# ruff: noqa: RUF001  (the paper's exact wording keeps its typographic quotes and dashes)
"""The instrument library: every question of the paper's supplementary section 7, as data.

``write_instruments`` writes these into ``Instrument``/``Question`` rows (idempotent: a rerun updates
wording and adds what is missing). The migration ``surveys/0004_load_instrument_library`` runs it, so every
database has the paper's instruments from its first ``migrate``; ``manage.py load_instruments`` reruns it
after the library changes. Wording follows section 7 word for word except for
the piped words, written as tokens that ``surveys.piping`` fills from the participant's party answers:

- ``[inparty]``/``[outparty]``: plural noun ("Democrats", "Republicans");
- ``[inparty_member]``/``[outparty_member]``: singular noun ("an average Republican");
- ``[inparty_adj]``/``[outparty_adj]``: adjective ("Democratic voters", "Republican leaders");
- ``[inparty_candidate]``: the party's 2024 presidential candidate; ``[party_id]``: the answer to party id.

Where section 7 and section 1.4 disagree, section 1.4 (the preregistered index definitions and the
cited instruments) is followed: ``kalmoe_mason_3`` asks about the respondent's own party ("justified for
[inparty members] to use violence", as in Kalmoe and Mason) and ``meta_spv_2`` about threats to
"[inparty] leaders" (section 7 prints "[out party]" twice, which cannot be meant).

Choice values follow ``ranking_challenge.survey.SurveyResponse`` (3.4.0) wherever that model has the
question, so the baseline answers map onto the PRC request without a lookup table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F, Field

if TYPE_CHECKING:
    from surveys.models import Instrument, Question

Option = dict[str, Any]


def _options(*pairs: tuple[Any, str]) -> list[Option]:
    return [{"value": value, "label": label} for value, label in pairs]


def _numbered(*labels: str) -> list[Option]:
    return [{"value": i, "label": label} for i, label in enumerate(labels, start=1)]


PLATFORM_NAMES = {"facebook": "Facebook", "x": "X (Twitter)", "reddit": "Reddit"}

# Words piped into question text, by the party the participant identifies with or leans to.
PARTY_WORDS: dict[str, dict[str, str]] = {
    "republican": {"plural": "Republicans", "member": "Republican", "adj": "Republican", "candidate": "Trump"},
    "democrat": {"plural": "Democrats", "member": "Democrat", "adj": "Democratic", "candidate": "Harris"},
}
OTHER_PARTY = {"republican": "democrat", "democrat": "republican"}

YES_NO_UNSURE = _options(("yes", "Yes"), ("no", "No"), ("not_sure", "Not sure"))
HEADLINE_CHOICES = _options(("true", "True"), ("false", "False"), ("unsure", "Unsure"))
WHO5_SCALE = _options(
    (5, "All of the time"),
    (4, "Most of the time"),
    (3, "More than half the time"),
    (2, "Some of the time"),
    (0, "At no time"),
)
# WHO-5 scores "Less than half the time" as 1; the paper's list (section 7) omits that answer, so
# the remaining answers keep their WHO-5 scores (5, 4, 3, 2, 0).


def _seven_point(low: str, high: str) -> list[Option]:
    """A 1-7 scale labelled only at its ends, as section 7 prints it."""
    middle = [{"value": i, "label": str(i)} for i in range(2, 7)]
    return [{"value": 1, "label": low}, *middle, {"value": 7, "label": high}]


AGREE_7 = _seven_point("1 = Strongly disagree", "7 = Strongly agree")
COMFORT_7 = _seven_point("1 (Not at all comfortable)", "7 (Extremely comfortable)")

HEADLINES_PROMPT = (
    "Of the following news events, which ones do you think are true events that occurred in the last month, "
    "and which ones do you think are false and did not occur?"
)

# Section 7.1: the eleven headline groups, (is it true, headline).
HEADLINE_GROUPS: dict[int, list[tuple[bool, str]]] = {
    1: [
        (False, "Nikki Haley fails to win any Republican primaries before ending her election bid"),
        (True, "U.N. Team finds grounds to support reports of sexual violence in Hamas Attack"),
        (
            False,
            "Alabama governor vetoes IVF protection bill, limiting the protection for fertility services in the state",
        ),
        (True, "Biden directs US military to establish aid port in Gaza"),
        (True, "Biden and Trump trade attacks in dueling events in Georgia"),
    ],
    2: [
        (False, "US House votes against $95 billion aid package for Ukraine, Israel, and Taiwan"),
        (True, "Trump Hush money trial commences"),
        (False, "ByteDance agrees to sell TikTok, avoiding a US shutdown"),
        (True, "USC cancels main commencement ceremony after protests, arrests"),
        (True, "Tornadoes devastate parts of Nebraska and Iowa"),
    ],
    3: [
        (False, "India's Modi reelected in a landslide, increasing his party's majority"),
        (True, "Louisiana governor signs bill to classify abortion pills as controlled substances into law"),
        (True, "Taiwan's parliament passes bill pushing pro-China changes"),
        (False, "Biden details Gaza truce proposal, Hamas rejects it outright"),
        (True, "In Shift, Biden Issues Order Allowing Temporary Border Closure to Migrants"),
    ],
    4: [
        (False, "The U.N. Security Council rejects U.S. cease-fire plan to end the war in Gaza"),
        (True, "Inflation slows in May, with consumer prices up 3.3% from a year ago"),
        (True, "Unanimous Supreme Court preserves access to abortion pill mifepristone"),
        (True, "Biden tells congressional Democrats he is “firmly committed” to staying in 2024 race"),
        (False, "Ohio House rejects bill restricting bathroom use for transgender students"),
    ],
    5: [
        (False, "Supreme Court upholds EPA’s interstate air pollution regulation"),
        (
            False,
            "Labour Party’s Keir Starmer concedes defeat as Prime Minister Rishi Sunak and his Conservative Party "
            "head towards another sweeping UK election victory",
        ),
        (True, "Assassination attempt on Trump at Pennsylvania rally leaves 2 hurt, 2 dead, including shooter"),
        (True, "Biden reportedly to push for supreme court term limits and new ethics code"),
        (False, "Speaker Johnson calls on Biden to resign after the president announces he won’t seek reelection"),
    ],
    6: [
        (True, "Venezuelan President Nicolas Maduro claims election victory, refuses to publish results"),
        (False, "U.S., Russia, and other countries end prisoner swap negotiations after failing to reach agreement"),
        (True, "US economy added far fewer jobs than expected in July"),
        (False, "Google is not an illegal monopoly, federal court rules"),
        (True, "Harris selects Minnesota Gov. Tim Walz to be VP running mate"),
    ],
    7: [
        (True, "Trump campaign hacked, blames Iran for stealing internal communications"),
        (True, "Ilhan Omar, member of the ‘Squad’, wins Minnesota Democratic primary"),
        (False, "Minouche Shafik Announces She Will Continue Tenure as Columbia President, Seeks to ‘Reunify’ Campus"),
        (True, "‘The answer is no’: Pro-Palestinian delegates say their request for a speaker at DNC was shut down"),
        (False, "RFK Jr. suspends campaign; endorses VP Harris"),
    ],
    8: [
        (False, "Supreme Court Agrees to Restart Biden’s Latest Student Debt Relief Plan"),
        (False, "Harris vows to ban fracking as president"),
        (True, "Harris says she’d appoint a Republican to her Cabinet if elected"),
        (True, "Trump Says He’ll Vote Against Florida’s Abortion Rights Measure After Conservative Backlash"),
        (True, "US accuses Russian state media of meddling in 2024 election"),
    ],
    9: [
        (False, "Putin Declares Support for Trump, Dismisses Harris"),
        (
            False,
            "Ohio police note ‘some credible reports’ of Haitian immigrants harming pets, are investigating further",
        ),
        (True, "Donald Trump Rejects A Rematch, Says There Won’t Be Another Debate With Kamala Harris"),
        (True, "Trump is safe following shooting at Florida golf course; suspect detained"),
        (True, "Netanyahu warns Yemen’s Houthis face a “heavy price” as missile lands in central Israel"),
    ],
    10: [
        (True, "Mark Robinson Vows to Stay in N.C. Governor's Race After CNN Report"),
        (False, "Freddie Owens execution delayed after key witness admits he lied"),
        (True, "No government shutdown for now: Congress agrees on temporary funding deal through December"),
        (False, "Trump says he would run for president again in 2028 if he loses this time"),
        (True, "Ukraine's Zelenskiy says US decisive actions could end Russian war next year"),
    ],
    11: [
        (True, "Gaetz Paid for Sex, Used Drugs While in Congress, Panel Finds"),
        (False, "Luigi Mangione Pleads Guilty to State Murder and Terror Charges"),
        (True, "Azerbaijan Airlines plane headed to Russia crashes hundreds of miles off course, dozens dead"),
        (False, "Donald Trump wins appeal against E Jean Carroll sexual abuse verdict"),
        (True, "Mike Johnson re-elected House speaker after GOP mutiny threat dissolves"),
    ],
}


def headline_items(group: int) -> list[dict[str, Any]]:
    return [
        {"key": f"g{group}_{i}", "text": text, "true": truth}
        for i, (truth, text) in enumerate(HEADLINE_GROUPS[group], start=1)
    ]


PARTY_QUESTIONS: list[dict[str, Any]] = [
    {
        "key": "party_id",
        "page": 1,
        "kind": "single",
        "text": "Generally speaking, do you usually think of yourself as a Republican, Democrat, Independent, or what?",
        "options": _options(
            ("republican", "Republican"),
            ("democrat", "Democrat"),
            ("independent", "Independent"),
            ("no_preference", "No preference"),
            ("other", "Other (please specify)"),
        ),
        "write_in_option": "other",
    },
    {
        "key": "party_strong",
        "page": 2,
        "kind": "single",
        "text": "Would you call yourself a strong [party_id] or not a very strong [party_id]?",
        "options": _options(("strong", "Strong"), ("not_strong", "Not very strong")),
        "show_if": {"question": "party_id", "in": ["republican", "democrat"]},
    },
    {
        "key": "party_leaner",
        "page": 2,
        "kind": "single",
        "text": "Do you think of yourself as closer to the Republican or Democratic Party?",
        "options": _options(("republican", "Republican"), ("democrat", "Democratic")),
        "show_if": {"question": "party_id", "in": ["independent", "no_preference", "other"]},
    },
]

DEMOGRAPHIC_QUESTIONS: list[dict[str, Any]] = [
    {
        "key": "browser_mobile",
        "page": 3,
        "kind": "slider",
        "text": "For each of the platforms below, how often would you say you use social media from your desktop "
        "computer (including laptops), as opposed to your mobile device? For each platform, please use the slider "
        "where 0 means only mobile and 100 only desktop. If you do not use the platform, please check "
        "“Not Applicable.”",
        "items": [{"key": key, "text": name} for key, name in PLATFORM_NAMES.items()],
        "min_value": 0,
        "max_value": 100,
        "min_label": "Only mobile",
        "max_label": "Only desktop",
        "allow_not_applicable": True,
    },
    {
        "key": "gender",
        "page": 3,
        "kind": "single",
        "text": "Are you:",
        "options": _options(
            ("male", "Male"),
            ("female", "Female"),
            ("nonbinary", "Non-binary"),
            ("prefer_not_to_say", "Prefer not to say"),
        ),
    },
    {
        "key": "age",
        "page": 3,
        "kind": "single",
        "text": "What is your age?",
        "options": _numbered("18-24", "25-34", "35-44", "45-54", "55-64", "65+"),
    },
    {
        "key": "education",
        "page": 3,
        "kind": "single",
        "text": "What is the highest level of education you have completed?",
        "options": _numbered(
            "Some high school",
            "Graduated high school",
            "Some college",
            "Associate’s degree",
            "Bachelor’s degree",
            "Graduate degree",
        ),
    },
    {
        "key": "ideology",
        "page": 3,
        "kind": "likert",
        "text": "Here is a seven-point scale on which the political views that people might hold are arranged from "
        "extremely liberal—point 1—to extremely conservative—point 7. Where would you place yourself on this scale?",
        "options": _numbered(
            "1. Extremely liberal",
            "2. Liberal",
            "3. Slightly liberal",
            "4. Moderate, middle of the road",
            "5. Slightly conservative",
            "6. Conservative",
            "7. Extremely conservative",
        ),
    },
    {
        "key": "income",
        "page": 3,
        "kind": "single",
        "text": "What is your annual household income?",
        "options": _numbered(
            "Less than $20,000",
            "$20,000 to $34,999",
            "$35,000 to $49,999",
            "$50,000 to $74,999",
            "$75,000 to $99,999",
            "$100,000 to $149,999",
            "$150,000+",
        ),
    },
    {
        "key": "ethnicity",
        "page": 3,
        "kind": "single",
        "text": "Which race or ethnicity best describes you? (Please choose only one.)",
        "options": _options(
            ("native_american", "American Indian or Alaskan Native"),
            ("asian_or_pacific_islander", "Asian / Pacific Islander"),
            ("black_or_african_american", "Black or African American"),
            ("hispanic_or_latino", "Hispanic"),
            ("white_or_caucasian", "White / Caucasian"),
            ("multiple_or_other", "Multiple ethnicity/ Other (please specify)"),
        ),
        "write_in_option": "multiple_or_other",
    },
    {
        "key": "socmed_use",
        "page": 3,
        "kind": "single",
        "text": "Think of the past two weeks. How much time did you spend on social media, on average, per day?",
        "options": _numbered(
            "0–30 minutes",
            "30–60 minutes",
            "60–90 minutes",
            "90–120 minutes",
            "2–3 hours",
            "3–4 hours",
            "More than 4 hours",
        ),
    },
    {
        "key": "desktop_share",
        "page": 3,
        "kind": "single",
        "text": "Is your desktop shared with others?",
        "options": _options(("yes", "Yes"), ("no", "No")),
    },
]


# The nine issues of section 3.3 ("the user's political position on nine issues (known from their baseline survey
# answers)"). Section 7 does not print these questions; each asks for the position the GPT-4o prompt rates a post
# on, with the prompt's five answers and its numbers (5 = the prompt's first wording), so a participant's answer and
# a post's rating are on one scale. Key: ``issue_<name>``; ``ranker_input.issue_positions_from_answers`` reads them.
ISSUES: dict[str, tuple[str, tuple[str, str, str, str, str]]] = {
    "trump": (
        "How do you feel about Donald Trump?",
        ("Highly favorable", "Somewhat favorable", "Neutral", "Somewhat unfavorable", "Strongly unfavorable"),
    ),
    "media": (
        "How much do you trust the mainstream media?",
        ("Strongly trust", "Somewhat trust", "Neither trust nor distrust", "Somewhat distrust", "Strongly distrust"),
    ),
    "immigration": (
        "Should immigration to the United States be increased, decreased, or kept about the same?",
        ("Greatly increased", "Somewhat increased", "Kept about the same", "Somewhat decreased", "Greatly decreased"),
    ),
    "abortion": (
        "Do you support or oppose a legal right to abortion?",
        ("Strongly support", "Somewhat support", "Neither support nor oppose", "Somewhat oppose", "Strongly oppose"),
    ),
    "israel": (
        "Do you support or oppose Israel?",
        ("Strongly support", "Somewhat support", "Neither support nor oppose", "Somewhat oppose", "Strongly oppose"),
    ),
    "climate": (
        "How concerned are you about climate change?",
        ("Extremely concerned", "Somewhat concerned", "Moderately concerned", "Only a little concerned",
         "Not at all concerned"),
    ),
    "racism": (
        "How big a problem is racism against Black Americans?",
        ("A major problem", "A significant problem", "A moderate problem", "Only a slight problem",
         "Not a problem at all"),
    ),
    "military": (
        "Do you support or oppose the U.S. military?",
        ("Strongly support", "Somewhat support", "Neutral", "Somewhat oppose", "Strongly oppose"),
    ),
    "economy": (
        "How do you feel about the current U.S. economic situation?",
        ("Extremely positive", "Somewhat positive", "Neither positive nor negative", "Somewhat negative",
         "Extremely negative"),
    ),
}  # fmt: skip
ISSUE_KEY_PREFIX = "issue_"


def issue_questions(page: int) -> list[dict[str, Any]]:
    """The nine issue questions, on ``page`` (answer values 5 down to 1, as the prompt numbers them)."""
    return [
        {
            "key": f"{ISSUE_KEY_PREFIX}{issue}",
            "page": page,
            "kind": "likert",
            "text": text,
            "options": [{"value": 5 - i, "label": label} for i, label in enumerate(labels)],
        }
        for issue, (text, labels) in ISSUES.items()
    ]


def _scale_100(key: str, page: int, text: str, low: str, high: str) -> dict[str, Any]:
    return {
        "key": key,
        "page": page,
        "kind": "slider",
        "text": text,
        "min_value": 0,
        "max_value": 100,
        "min_label": low,
        "max_label": high,
    }


def _neely(prefix: str, stem: str, page: int) -> list[dict[str, Any]]:
    return [
        {
            "key": f"{prefix}_{platform}",
            "page": page,
            "kind": "single",
            "text": f"{stem} on {name}?",
            "options": YES_NO_UNSURE,
        }
        for platform, name in PLATFORM_NAMES.items()
    ]


def outcome_questions(first_page: int) -> list[dict[str, Any]]:
    """The outcome measures every wave repeats (section 7 after the demographics), from ``first_page`` on."""
    p = first_page
    return [
        {
            "key": "wellbeing",
            "page": p,
            "kind": "likert",
            "text": "Over the past 2 weeks, how often have you felt the following?",
            "options": WHO5_SCALE,
            "items": [
                {"key": "cheerful", "text": "I have felt cheerful and in good spirits."},
                {"key": "calm", "text": "I have felt calm and relaxed."},
                {"key": "active", "text": "I have felt active and vigorous."},
                {"key": "rested", "text": "I woke up feeling fresh and rested."},
                {"key": "interest", "text": "My daily life has been filled with things that interest me."},
            ],
        },
        {
            "key": "ft_out",
            "page": p + 1,
            "kind": "thermometer",
            "text": "Please indicate how you feel toward [outparty_adj] voters using the scale below. 100 means that "
            "you feel very favorably or warm toward them, 0 means that you feel very unfavorable or cold, and 50 "
            "means neutral.",
            "min_value": 0,
            "max_value": 100,
            "min_label": "Cold",
            "max_label": "Warm",
        },
        {
            "key": "ft_in",
            "page": p + 1,
            "kind": "thermometer",
            "text": "Please indicate how you feel toward [inparty_adj] voters using the scale below. 100 means that "
            "you feel very favorably or warm toward them, 0 means that you feel very unfavorable or cold, and 50 "
            "means neutral.",
            "min_value": 0,
            "max_value": 100,
            "min_label": "Cold",
            "max_label": "Warm",
        },
        {
            "key": "sd_out",
            "page": p + 1,
            "kind": "likert",
            "text": "How comfortable are you having friends who are [outparty]?",
            "options": COMFORT_7,
        },
        {
            "key": "sd_in",
            "page": p + 1,
            "kind": "likert",
            "text": "How comfortable are you having friends who are [inparty]?",
            "options": COMFORT_7,
        },
        _scale_100(
            "kalmoe_mason_3",
            p + 2,
            "How much do you feel it is justified for [inparty] to use violence in advancing their political goals "
            "these days?",
            "Not at all justified",
            "Extremely justified",
        ),
        _scale_100(
            "kalmoe_mason_1",
            p + 2,
            "When, if ever, is it OK for [inparty] to send threatening and intimidating messages to [outparty_adj] "
            "leaders?",
            "Never OK",
            "Always OK",
        ),
        _scale_100(
            "meta_spv_1",
            p + 2,
            "How do you think an average [outparty_member] would respond to the following question? How much do you "
            "feel it is justified for [outparty] to use violence in advancing their political goals these days?",
            "Not at all justified",
            "Extremely justified",
        ),
        _scale_100(
            "meta_spv_2",
            p + 2,
            "How do you think an average [outparty_member] would respond to the following question? When, if ever, "
            "is it OK for [outparty] to send threatening and intimidating messages to [inparty_adj] leaders?",
            "Never OK",
            "Always OK",
        ),
        _scale_100(
            "meta_wev_past",
            p + 2,
            "Think about the recent presidential election. If [inparty_candidate] was declared the winner of a "
            "close, contested election, how likely do you think [outparty_adj] voters would have been to engage in "
            "violence?",
            "Not at all likely",
            "Extremely likely",
        ),
        {
            "key": "empathy",
            "page": p + 3,
            "kind": "likert",
            "text": "How much do you agree or disagree with the following statements?",
            "options": AGREE_7,
            "items": [
                {"key": "difficult", "text": "I find it difficult to see things from [outparty]' point of view."},
                {
                    "key": "important",
                    "text": "I think it is important to understand [outparty] by imagining how things look from their "
                    "perspective.",
                },
            ],
        },
        _scale_100(
            "gss_trust",
            p + 3,
            "Generally speaking, would you say that most people can be trusted, or that you can't be too careful in "
            "dealing with people?",
            "Most people can be trusted",
            "You can't be too careful",
        ),
        *_neely(
            "learned",
            "In the last two weeks, have you learned something that was useful or helped you understand something "
            "important",
            p + 4,
        ),
        *_neely(
            "bftw",
            "In the last two weeks, have you witnessed or experienced content that you would consider bad for "
            "the world",
            p + 4,
        ),
        *_neely("meaningful", "In the last two weeks, have you experienced a meaningful connection with others", p + 4),
        *_neely(
            "negative",
            "In the last two weeks, have you personally witnessed or experienced something that affected you "
            "negatively",
            p + 4,
        ),
    ]


def _headlines(group: int, page: int) -> dict[str, Any]:
    return {
        "key": "headlines",
        "page": page,
        "kind": "headlines",
        "text": HEADLINES_PROMPT,
        "options": HEADLINE_CHOICES,
        "items": headline_items(group),
    }


FOLLOW_UP_NOTE = "Party words are piped from the participant's baseline answers."

# The instruments the library loads. Baseline asks party and demographics first; follow-ups pipe from it.
INSTRUMENTS: list[dict[str, Any]] = [
    {
        "slug": "prc-baseline",
        "name": "PRC baseline survey",
        "description": "Party identification, demographics and every outcome measure (supplementary section 7); "
        "headline group 9; last, the nine issue positions Challenging Stereotypes personalizes on (section 3.3).",
        # The issue questions come last, so that they cannot prime the outcome measures.
        "questions": [
            *PARTY_QUESTIONS,
            *DEMOGRAPHIC_QUESTIONS,
            *outcome_questions(4),
            _headlines(9, 9),
            *issue_questions(10),
        ],
    },
    {
        "slug": "prc-midline",
        "name": "PRC midline survey",
        "description": f"Every outcome measure; headline group 10. {FOLLOW_UP_NOTE}",
        "questions": [*outcome_questions(1), _headlines(10, 6)],
    },
    {
        "slug": "prc-endline",
        "name": "PRC endline survey",
        "description": f"Every outcome measure; headline group 11. {FOLLOW_UP_NOTE}",
        "questions": [*outcome_questions(1), _headlines(11, 6)],
    },
]

QUESTION_FIELDS = (
    "page",
    "kind",
    "text",
    "options",
    "items",
    "min_value",
    "max_value",
    "min_label",
    "max_label",
    "allow_not_applicable",
    "write_in_option",
    "required",
    "show_if",
)


def write_instruments(
    instrument_model: type[Instrument], question_model: type[Question]
) -> list[tuple[Instrument, bool, int]]:
    """Write ``INSTRUMENTS`` into the database: (instrument, created, number of questions) each.

    The models are passed in so that the data migration can run this with its historical models (a field the
    library knows but the model does not have yet is left out). Rerunning updates wording and scales in place
    (questions are matched by key) and removes questions the library no longer has, so the database always
    equals the library.
    """
    names = {field.name for field in question_model._meta.get_fields()}
    fields = [name for name in QUESTION_FIELDS if name in names]
    loaded = []
    with transaction.atomic():
        for spec in INSTRUMENTS:
            instrument, created = instrument_model.objects.update_or_create(
                slug=spec["slug"], defaults={"name": spec["name"], "description": spec["description"]}
            )
            keys = [question["key"] for question in spec["questions"]]
            questions = question_model.objects.filter(instrument=instrument)
            questions.exclude(key__in=keys).delete()
            # Positions are unique: park the existing rows out of the way before renumbering.
            questions.update(position=F("position") + 100_000)
            for position, question in enumerate(spec["questions"], start=1):
                values = {name: question.get(name, _default(question_model, name)) for name in fields}
                question_model.objects.update_or_create(
                    instrument=instrument, key=question["key"], defaults={"position": position, **values}
                )
            loaded.append((instrument, created, len(keys)))
    return loaded


def _default(model: type[Question], name: str) -> Any:
    field = model._meta.get_field(name)
    assert isinstance(field, Field)
    return field.get_default()
