"""The paper's design rules written once (participants/paper.py): Table S11 and the arms' caps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from participants import paper

platforms = st.sampled_from(paper.PLATFORMS)
content_types = st.sampled_from(paper.CONTENT_TYPES)


def test_table_s11_facebook_posts_come_in_two_passes_of_10_and_35() -> None:
    assert paper.slate_passes("facebook", "post") == (10, 35)
    assert [paper.slate_size("facebook", "post", n) for n in (1, 2)] == [10, 35]
    assert paper.slate_size("reddit", "comment") is None
    assert {paper.slate_size(p, "post") for p in ("reddit", "twitter")} == {50}


def test_the_extension_config_is_table_s11() -> None:
    assert paper.extension_slate_sizes() == {
        "reddit": {"posts": 50, "comments": None},
        "twitter": {"posts": 50, "comments": 50},
        "facebook": {"posts": [10, 35], "comments": 50},
    }


@given(platforms, content_types, st.integers(0, 200), st.one_of(st.none(), st.integers(1, 5)))
def test_a_request_is_one_of_its_platform_passes(platform: str, content_type: str, n: int, named: int | None) -> None:
    number = paper.slate_pass(platform, content_type, n, named)

    assert 1 <= number <= len(paper.slate_passes(platform, content_type))
    if named is not None:
        assert number == min(named, len(paper.slate_passes(platform, content_type)))


@given(platforms, content_types, st.integers(1, 2), st.integers(0, 200))
def test_the_slate_length_is_the_table_size_or_all_available(
    platform: str, content_type: str, number: int, n: int
) -> None:
    length = paper.slate_length(platform, content_type, number, n)
    size = paper.slate_size(platform, content_type, number)

    assert length == (n if size is None else min(size, n))


def test_default_caps_follow_each_arms_rules_in_section_3() -> None:
    assert paper.default_caps("uprank_bridging") == paper.CapRule(0, 0)
    assert paper.default_caps("add_news") == paper.CapRule(15, 0)
    assert paper.default_caps("challenging_stereotypes") == paper.CapRule(20, 20)
    assert paper.default_caps("diverse_approval") == paper.CapRule(None, None)
    assert paper.default_caps("someone-elses-ranker") == paper.OTHER_RANKERS_CAPS
    assert {arm.slug for arm in paper.PAPER_ARMS} <= set(paper.PAPER_CAPS)


@given(st.integers(0, 500), st.integers(0, 100))
def test_an_inserted_share_cap_holds_on_the_slate_shown(n_kept: int, pct: int) -> None:
    rule = paper.CapRule(inserted_pct=pct, deleted_pct=pct)
    most = rule.max_inserted(n_kept)

    if pct == 100:
        assert most is None
    else:
        assert most is not None
        assert most == 0 or most / (n_kept + most) <= pct / 100 + 1e-9
        assert (most + 1) / (n_kept + most + 1) > pct / 100 - 1e-9  # and it is the largest such count
    deleted = rule.max_deleted(n_kept)
    assert deleted is not None
    assert deleted <= n_kept * pct / 100 + 1e-9


def test_add_news_may_add_8_posts_to_a_slate_of_50() -> None:
    # 8 / 58 = 13.8 % of the posts shown; a ninth would be 15.3 %.
    assert paper.default_caps("add_news").max_inserted(50) == 8
