"""The shared management-command helpers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management.base import CommandError, CommandParser

from prc_site.lib.commands import add_day_range, iso_date


def test_iso_date_reads_a_day_and_refuses_anything_else_as_a_command_error() -> None:
    assert iso_date("2026-02-28") == dt.date(2026, 2, 28)
    with pytest.raises(CommandError, match="'2026-02-30' is not a date"):
        iso_date("2026-02-30")


def test_the_day_range_arguments_are_parsed_as_dates_with_an_optional_study() -> None:
    parser = CommandParser()
    add_day_range(parser)
    options = parser.parse_args(["--start", "2026-01-01", "--end", "2026-01-31"])
    assert (options.start, options.end, options.study) == (dt.date(2026, 1, 1), dt.date(2026, 1, 31), None)


def test_the_platforms_links_point_at_its_own_server_unless_a_site_url_is_set() -> None:
    from prc_site.management.commands.run_platform import site_url

    server = "http://127.0.0.1:8765"
    assert site_url({}, server) == server
    assert site_url({"PRC_SITE_URL": ""}, server) == server
    assert site_url({"PRC_SITE_URL": "https://study.example.org"}, server) == "https://study.example.org"


def test_the_demo_prints_the_pages_of_its_rehearsed_study() -> None:
    from django.urls import resolve

    from participants.management.commands.seed_demo import STUDY_SLUG, demo_plan
    from prc_site.management.commands.run_platform import rehearsal_links

    assert demo_plan().slug == STUDY_SLUG
    links = rehearsal_links("http://127.0.0.1:8765")
    assert set(links) == {"effects", "balance", "funnel"}
    for name, link in links.items():
        path, _, query = link.removeprefix("http://127.0.0.1:8765").partition("?")
        assert resolve(path).url_name == name
        assert query == f"study={STUDY_SLUG}"
