"""Factories for the core rows. Helpers that build a whole journey live in the tests that need them."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from participants.models import Arm, ConsentDocument, Participant, RecruitmentSource, Study, hash_vendor_pid
from participants.paper import PAPER_ARMS


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    name = factory.Sequence(lambda n: f"Study {n}")
    slug = factory.Sequence(lambda n: f"study-{n}")
    status = Study.Status.RECRUITING


class ArmFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Arm

    study = factory.SubFactory(StudyFactory)
    name = factory.Sequence(lambda n: f"Arm {n}")
    slug = factory.Sequence(lambda n: f"arm-{n}")
    ranker_key = "control"
    allocation_weight = 1
    starts_facebook = dt.date(2024, 1, 1)
    starts_reddit = dt.date(2024, 1, 1)
    starts_twitter = dt.date(2024, 1, 1)


def paper_arms(study: Study) -> list[Arm]:
    """The paper's six arms, 2:1:1:1:1:1, live on every platform."""
    return [
        ArmFactory(study=study, slug=slug, name=name, ranker_key=slug, allocation_weight=weight, is_control=control)
        for slug, name, weight, control in PAPER_ARMS
    ]


class SourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RecruitmentSource

    study = factory.SubFactory(StudyFactory)
    name = factory.Sequence(lambda n: f"Vendor {n}")
    slug = factory.Sequence(lambda n: f"vendor-{n}")
    pid_param = "pid"
    complete_url = "https://vendor.example/complete?id={pid}"
    screenout_url = "https://vendor.example/screenout?id={pid}"
    overquota_url = "https://vendor.example/overquota?id={pid}"
    quality_url = "https://vendor.example/quality?id={pid}"
    duplicate_url = "https://vendor.example/duplicate?id={pid}"


class ConsentDocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConsentDocument

    study = factory.SubFactory(StudyFactory)
    version = "1.0"
    text = "You agree to install the extension and let it reorder your feeds."
    questions = ["I am 18 or older", "I agree to take part"]
    effective_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=365))


class ParticipantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Participant

    study = factory.SubFactory(StudyFactory)
    source = factory.SubFactory(SourceFactory, study=factory.SelfAttribute("..study"))
    vendor_pid = factory.Sequence(lambda n: f"vendor-pid-{n}")
    vendor_pid_hash = factory.LazyAttribute(lambda o: hash_vendor_pid(o.vendor_pid))


def login(username: str, role: str | None = None, *, superuser: bool = False, staff: bool = True) -> Client:
    user = User.objects.create_user(username, password="pw", is_staff=staff, is_superuser=superuser)
    if role:
        user.groups.add(Group.objects.get(name=role))  # the roles exist after migrate (create_roles)
    client = Client()
    client.force_login(user)
    return client
