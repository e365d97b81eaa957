import pytest

from rankers.validation import MAX_URL_LENGTH, is_http_url


@pytest.mark.parametrize(
    "url",
    ["http://a.com", "https://x.y/z?q#f", "HTTP://A.COM", "http://user:pw@host:80/p", "http://[::1]:8000/"],
)
def test_absolute_http_urls_with_a_host_are_accepted(url: str) -> None:
    assert is_http_url(url)


@pytest.mark.parametrize(
    "url",
    ["ftp://a.com", "http://", "http:///x", "http://:80", "javascript:alert(1)", "//a.com", "http://@/x", "", None, 7],
)
def test_other_schemes_missing_hosts_and_non_strings_are_refused(url: object) -> None:
    assert not is_http_url(url)


def test_urls_over_the_length_limit_are_refused() -> None:
    base = "https://example.com/"
    assert is_http_url(base + "x" * (MAX_URL_LENGTH - len(base)))
    assert not is_http_url(base + "x" * (MAX_URL_LENGTH - len(base) + 1))
