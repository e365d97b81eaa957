"""In-feed questions through the extension API: next question, answer, dismissal, and the research page."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from participants.models import ConsentRecord, ExtensionInstall, Participant, Study
from participants.roles import READER, create_roles
from participants.services import assign_arm
from surveys import in_feed_schedule, services
from surveys.models import InFeedPrompt, InFeedQuestion
from tests.factories import ConsentDocumentFactory, ParticipantFactory, StudyFactory, login, paper_arms
from tests.threads import run_at_once

pytestmark = pytest.mark.django_db

NEXT = "/api/v1/extension/in-feed/next"
ANSWERS = "/api/v1/extension/in-feed/answers"
DISMISSALS = "/api/v1/extension/in-feed/dismissals"
DAY0 = dt.datetime(2025, 3, 3, 15, 0, tzinfo=dt.UTC)  # 10:00 in New York


class Clock:
    """The time the platform sees (mocked: time is the outside world)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = DAY0
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def day(self, n: int, hour: int = 15) -> None:
        self.now = DAY0.replace(hour=hour) + dt.timedelta(days=n)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def study() -> Study:
    study = StudyFactory(status=Study.Status.RUNNING, randomization_seed="in-feed-test-seed")
    paper_arms(study)
    services.load_in_feed_questions(study=study)
    return study


def enrolled(study: Study, token: str, party: str = "democrat", arm: str | None = None) -> Participant:
    document = study.consent_documents.first() or ConsentDocumentFactory(
        study=study, effective_at=DAY0 - dt.timedelta(days=30)
    )
    participant: Participant = ParticipantFactory(
        study=study,
        stage=Participant.Stage.ENROLLED,
        consented_at=DAY0 - dt.timedelta(hours=1),
        enrolled_at=DAY0,
        screener_answers={"party": party},
    )
    ConsentRecord.objects.create(participant=participant, document=document, given_at=DAY0, answers={})
    ExtensionInstall.objects.create(
        participant=participant, install_key=f"k-{token}", token_hash=ExtensionInstall.hash_token(token)
    )
    assign_arm(participant=participant)
    return participant


def ask(client: Client, token: str, platform: str) -> Any:
    return client.get(NEXT, {"platform": platform}, HTTP_AUTHORIZATION=f"Bearer {token}")


def post(client: Client, path: str, token: str, body: dict[str, Any]) -> Any:
    return client.post(path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_over_four_simulated_weeks_one_question_a_week_on_the_first_platform_for_three_days(
    client: Client, study: Study, clock: Clock
) -> None:
    enrolled(study, "tok-weeks")
    shown = []
    for day in range(28):
        clock.day(day)
        for platform in ("reddit", "facebook"):
            prompt = ask(client, "tok-weeks", platform).json()["prompt"]
            if prompt:
                shown.append((day, platform, prompt["prompt_id"], prompt["day"]))

    assert [(day, platform) for day, platform, _, _ in shown] == [
        (week * 7 + d, "reddit") for week in range(4) for d in range(3)
    ]
    assert [day_of_offer for *_, day_of_offer in shown] == [1, 2, 3] * 4
    prompts = list(InFeedPrompt.objects.order_by("sequence"))
    assert [p.sequence for p in prompts] == [1, 2, 3, 4]
    assert all(p.days_shown == 3 and p.platform == "reddit" for p in prompts)
    keys = [p.question.key for p in prompts]
    assert keys == [
        in_feed_schedule.question_for("in-feed-test-seed", prompts[0].participant.public_id, n, _asked_keys(study, n))
        for n in (1, 2, 3, 4)
    ]


def _asked_keys(study: Study, sequence: int) -> list[str]:
    day = (DAY0 + dt.timedelta(days=7 * (sequence - 1))).date()
    return [q.key for q in InFeedQuestion.objects.filter(study=study) if q.is_asked_on(day)]


def test_asking_again_the_same_day_returns_the_same_question_and_counts_the_day_once(
    client: Client, study: Study, clock: Clock
) -> None:
    enrolled(study, "tok-same")
    first = ask(client, "tok-same", "twitter").json()["prompt"]
    again = ask(client, "tok-same", "twitter").json()["prompt"]
    other_platform = ask(client, "tok-same", "facebook").json()["prompt"]

    assert first == again
    assert other_platform is None
    assert InFeedPrompt.objects.get().days_shown == 1


def test_the_wording_is_piped_for_the_participant_and_the_platform(client: Client, study: Study, clock: Clock) -> None:
    InFeedQuestion.objects.filter(study=study).exclude(key="platform_negative_emotion").update(active=False)
    enrolled(study, "tok-pipe")
    text = ask(client, "tok-pipe", "reddit").json()["prompt"]["question"]["text"]
    assert "Reading Reddit today makes me feel angry, sad, or disgusted." in text

    InFeedQuestion.objects.filter(study=study).update(active=False)
    InFeedQuestion.objects.filter(study=study, key="violence_metaperception").update(active=True)
    enrolled(study, "tok-rep", party="republican")
    text = ask(client, "tok-rep", "reddit").json()["prompt"]["question"]["text"]
    assert text.startswith("How do you think an average Democrat would respond")
    assert "justified for Democrats to use violence" in text


def test_an_answer_is_stored_once_and_a_repeat_returns_the_first_result(
    client: Client, study: Study, clock: Clock
) -> None:
    enrolled(study, "tok-ans")
    prompt = ask(client, "tok-ans", "facebook").json()["prompt"]
    value = prompt["question"]["options"][0]["value"]
    body = {"prompt_id": prompt["prompt_id"], "value": value, "client_key": "answer-0001"}

    first = post(client, ANSWERS, "tok-ans", body)
    repeat = post(client, ANSWERS, "tok-ans", {**body, "value": prompt["question"]["options"][1]["value"]})

    assert first.status_code == 201
    assert repeat.status_code == 200
    assert repeat.json() == first.json()
    assert first.json()["status"] == "answered"
    assert InFeedPrompt.objects.get().answer == value
    clock.day(1)
    assert ask(client, "tok-ans", "facebook").json()["prompt"] is None  # answered: not offered again
    other = post(client, ANSWERS, "tok-ans", {**body, "client_key": "answer-0002"})
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "already_closed"


def test_a_dismissed_question_is_not_offered_again_that_week(client: Client, study: Study, clock: Clock) -> None:
    enrolled(study, "tok-dis")
    prompt = ask(client, "tok-dis", "facebook").json()["prompt"]

    reply = post(client, DISMISSALS, "tok-dis", {"prompt_id": prompt["prompt_id"], "client_key": "dismiss-01"})

    assert reply.status_code == 201
    assert reply.json()["status"] == "dismissed"
    for day in range(1, 7):
        clock.day(day)
        assert ask(client, "tok-dis", "facebook").json()["prompt"] is None
    clock.day(7)
    assert ask(client, "tok-dis", "facebook").json()["prompt"]["prompt_id"] != prompt["prompt_id"]


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "field"),
    [
        (ANSWERS, {"value": 1, "client_key": "answer-0001"}, 400, "required", "prompt_id"),
        (ANSWERS, {"prompt_id": 1, "value": 1, "client_key": "short"}, 400, "min_length", "client_key"),
        (ANSWERS, {"prompt_id": 999999, "value": 1, "client_key": "answer-0001"}, 404, "not_found", "prompt_id"),
        (DISMISSALS, {"prompt_id": 999999, "client_key": "dismiss-01"}, 404, "not_found", "prompt_id"),
    ],
)
def test_bad_requests_get_the_one_error_format(
    client: Client, study: Study, clock: Clock, path: str, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    enrolled(study, "tok-bad")
    reply = post(client, path, "tok-bad", body)
    assert reply.status_code == status
    assert reply.json()["error"]["code"] == code
    assert reply.json()["error"]["field"] == field


def test_an_answer_outside_the_options_is_refused_and_nothing_is_stored(
    client: Client, study: Study, clock: Clock
) -> None:
    enrolled(study, "tok-range")
    prompt = ask(client, "tok-range", "facebook").json()["prompt"]

    reply = post(
        client, ANSWERS, "tok-range", {"prompt_id": prompt["prompt_id"], "value": 99, "client_key": "answer-99"}
    )

    assert reply.status_code == 400
    assert reply.json()["error"] == {
        "code": "invalid_choice",
        "message": "99 is not one of this question's options.",
        "field": "value",
    }
    assert InFeedPrompt.objects.get().answered_at is None


def test_unknown_platform_and_missing_token_are_refused(client: Client, study: Study, clock: Clock) -> None:
    enrolled(study, "tok-plat")
    assert ask(client, "tok-plat", "myspace").json()["error"]["field"] == "platform"
    assert client.get(NEXT, {"platform": "reddit"}).status_code in (401, 403)
    assert ask(client, "tok-unknown", "reddit").json()["error"]["code"] == "invalid_token"


def test_another_participants_question_cannot_be_answered(client: Client, study: Study, clock: Clock) -> None:
    enrolled(study, "tok-a")
    enrolled(study, "tok-b")
    prompt = ask(client, "tok-a", "reddit").json()["prompt"]
    value = prompt["question"]["options"][0]["value"]

    reply = post(
        client, ANSWERS, "tok-b", {"prompt_id": prompt["prompt_id"], "value": value, "client_key": "answer-b1"}
    )

    assert reply.status_code == 404
    assert InFeedPrompt.objects.get().answered_at is None


def test_withdrawn_participants_get_no_question(client: Client, study: Study, clock: Clock) -> None:
    participant = enrolled(study, "tok-gone")
    Participant.objects.filter(pk=participant.pk).update(withdrawn_at=DAY0)
    assert ask(client, "tok-gone", "reddit").json()["prompt"] is None
    assert not InFeedPrompt.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_answers_with_one_client_key_store_one_answer(study: Study, clock: Clock) -> None:
    enrolled(study, "tok-race")
    prompt = ask(Client(), "tok-race", "reddit").json()["prompt"]
    value = prompt["question"]["options"][0]["value"]
    body = {"prompt_id": prompt["prompt_id"], "value": value, "client_key": "answer-race"}
    statuses = run_at_once(6, lambda i: post(Client(), ANSWERS, "tok-race", body).status_code)

    assert sorted(statuses) == [200] * 5 + [201]
    assert InFeedPrompt.objects.get().answer == value


def test_the_research_page_shows_exposure_and_response_rates_per_arm_and_question(
    client: Client, study: Study, clock: Clock
) -> None:
    create_roles()
    people = [enrolled(study, f"tok-r{i}") for i in range(6)]
    for i in range(len(people)):
        prompt = ask(client, f"tok-r{i}", "reddit").json()["prompt"]
        if i % 2 == 0:
            value = prompt["question"]["options"][0]["value"]
            post(
                client,
                ANSWERS,
                f"tok-r{i}",
                {"prompt_id": prompt["prompt_id"], "value": value, "client_key": f"ans-r{i}00"},
            )

    page = login("reader", READER).get(
        "/research/surveys/in-feed/", {"study": study.slug, "start": "2025-03-03", "end": "2025-03-09"}
    )

    assert page.status_code == 200
    html = page.content.decode()
    by_arm = {}
    for person in people:
        by_arm.setdefault(person.assignment.arm.name, []).append(person)
    for arm, members in by_arm.items():
        answered = sum(1 for p in members if people.index(p) % 2 == 0)
        expected = f"<tr><td>{arm}</td><td>{len(members)}</td><td>{len(members)}</td><td>100.0</td>"
        assert expected in html
        assert f"<td>{answered}</td><td>{round(100 * answered / len(members), 1)}</td>" in html
