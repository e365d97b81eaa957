"""The pure rules that turn what connectors read into candidate posts."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rankers.content.normalize import (
    MAX_POST_ID,
    MAX_TEXT,
    Skip,
    build_post,
    canonical_url,
    flatten,
    from_dataset_row,
    from_reddit_child,
    html_to_text,
    parse_time,
    stable_post_id,
)

UTC = dt.UTC


def test_canonical_url_drops_fragments_and_tracking_parameters_but_keeps_the_rest() -> None:
    url = "HTTPS://News.Example.org/a/b?utm_source=rss&id=7&fbclid=x#comments"
    assert canonical_url(url) == "https://news.example.org/a/b?id=7"


def test_canonical_url_leaves_a_query_without_tracking_parameters_exactly_as_written() -> None:
    assert canonical_url("https://example.org/search?q=a%20b&x=") == "https://example.org/search?q=a%20b&x="


def test_canonical_url_reads_a_relative_permalink_against_the_platform_site() -> None:
    assert canonical_url("/r/news/comments/a1/x/", base="https://www.reddit.com") == (
        "https://www.reddit.com/r/news/comments/a1/x/"
    )


@pytest.mark.parametrize("url", ["", "   ", "ftp://example.org/x", "/relative/without/base", "javascript:alert(1)"])
def test_an_item_without_a_public_http_url_is_skipped(url: str) -> None:
    with pytest.raises(Skip, match="URL"):
        canonical_url(url)


URL_PARTS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~%", min_size=1, max_size=12)


@given(
    host=URL_PARTS,
    path=st.lists(URL_PARTS, max_size=4),
    params=st.lists(st.tuples(URL_PARTS, URL_PARTS), max_size=3),
    tracking=st.lists(st.sampled_from(["utm_source", "utm_medium", "fbclid", "gclid"]), max_size=2),
    fragment=st.text(max_size=8),
)
def test_canonical_url_is_stable_and_ignores_tracking_parameters_and_fragments(
    host: str, path: list[str], params: list[tuple[str, str]], tracking: list[str], fragment: str
) -> None:
    params = [(key, value) for key, value in params if not key.lower().startswith("utm_")]
    base = f"https://{host}.example/" + "/".join(path)
    plain = base + ("?" + "&".join(f"{k}={v}" for k, v in params) if params else "")
    pairs = [f"{k}={v}" for k, v in params]
    for n, name in enumerate(tracking):  # tracking parameters anywhere among the others
        pairs.insert(n * 2 % (len(pairs) + 1), f"{name}=x")
    tracked = base + ("?" + "&".join(pairs) if pairs else "") + ("#" + fragment if fragment else "")
    canonical = canonical_url(plain)
    assert canonical_url(tracked) == canonical
    assert canonical_url(canonical) == canonical


def test_a_url_too_long_for_the_index_is_skipped() -> None:
    with pytest.raises(Skip):
        canonical_url("https://example.org/" + "é" * 1500)


@given(st.text(min_size=MAX_POST_ID + 1, max_size=MAX_POST_ID + 50))
def test_a_post_id_too_long_for_its_column_becomes_a_stable_hash(post_id: str) -> None:
    stable = stable_post_id(post_id, "https://example.org/")
    assert len(stable) <= MAX_POST_ID
    assert stable == stable_post_id(post_id, "https://example.org/other")


def test_a_post_without_an_id_is_identified_by_its_url() -> None:
    assert stable_post_id("  ", "https://example.org/p/1") == "https://example.org/p/1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-02T09:00:00.000Z", dt.datetime(2026, 12, 2, 9, tzinfo=UTC)),
        ("2026-12-02T10:00:00+01:00", dt.datetime(2026, 12, 2, 9, tzinfo=UTC)),
        ("2026-12-02 09:00:00", dt.datetime(2026, 12, 2, 9, tzinfo=UTC)),
        ("Wed, 02 Dec 2026 09:00:00 GMT", dt.datetime(2026, 12, 2, 9, tzinfo=UTC)),
        ("Wed Dec 02 09:00:00 +0000 2026", dt.datetime(2026, 12, 2, 9, tzinfo=UTC)),
        (1796202000, dt.datetime(2026, 12, 2, 9, tzinfo=UTC)),
        ("1796202000.0", dt.datetime(2026, 12, 2, 9, tzinfo=UTC)),
        (1796202000000, dt.datetime(2026, 12, 2, 9, tzinfo=UTC)),
        ("", None),
        (None, None),
        ("yesterday-ish", None),
        (True, None),
        (10**30, None),
    ],
)
def test_parse_time_reads_the_formats_exports_use_and_gives_none_otherwise(
    value: object, expected: dt.datetime | None
) -> None:
    assert parse_time(value) == expected


def test_html_to_text_keeps_paragraphs_drops_scripts_and_collects_alt_texts() -> None:
    text, alts = html_to_text('<p>One &amp; two.</p><p><img alt=" A bridge "> Three</p><script>x()</script>')
    assert text == "One & two.\n\nThree"
    assert alts == ["A bridge"]


def test_build_post_refuses_a_post_with_neither_title_nor_text() -> None:
    with pytest.raises(Skip, match="no title and no text"):
        build_post(post_id="1", url="https://e.org/", author="", title=" ", text="", alts=[], created_at=None)


def test_build_post_clips_long_text_and_joins_distinct_alt_texts() -> None:
    post = build_post(
        post_id="1",
        url="https://e.org/",
        author="a",
        title="",
        text="x" * (MAX_TEXT + 10),
        alts=["b", "b", "c"],
        created_at=None,
    )
    assert len(post.text) == MAX_TEXT
    assert post.media_alt_text == "b\nc"


def test_flatten_names_nested_fields_as_csv_exports_do() -> None:
    assert flatten({"author": {"name": "x"}, "media": [{"alt": "y"}], "n": 1}) == {
        "author/name": "x",
        "media/0/alt": "y",
        "n": 1,
    }


def test_a_json_dataset_row_and_its_csv_flattening_give_the_same_post() -> None:
    nested = {
        "id": "9",
        "url": "https://x.com/a/status/9",
        "fullText": "Hello",
        "createdAt": "2026-12-02T09:00:00Z",
        "author": {"userName": "a"},
        "media": [{"altText": "a cat"}],
    }
    assert from_dataset_row(nested, platform="twitter") == from_dataset_row(flatten(nested), platform="twitter")
    post = from_dataset_row(nested, platform="twitter")
    assert (post.post_id, post.author, post.text, post.media_alt_text) == ("9", "a", "Hello", "a cat")


@pytest.mark.parametrize(
    ("child", "reason"),
    [
        ({"kind": "t1", "data": {}}, "not a Reddit post"),
        ({"kind": "t3", "data": {"over_18": True, "permalink": "/r/x/1", "title": "t"}}, "NSFW"),
        ({"kind": "t3", "data": {"stickied": True, "permalink": "/r/x/1", "title": "t"}}, "pinned"),
        ("garbage", "not a Reddit post"),
    ],
)
def test_reddit_comments_nsfw_and_pinned_posts_are_skipped(child: object, reason: str) -> None:
    with pytest.raises(Skip, match=reason):
        from_reddit_child(child)
