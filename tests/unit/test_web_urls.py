"""A web hall's `return_url` and `notify_url` are parsed and compared with its configured address."""

from __future__ import annotations

import pytest

from hub.web_urls import is_address_of

BASE = "http://127.0.0.1:8090"


@pytest.mark.parametrize("url", [
    f"{BASE}/result/1", f"{BASE}", f"{BASE}/", "HTTP://127.0.0.1:8090/notices", "http://127.0.0.1:8090/a?b=c#d",
])  # fmt: skip
def test_an_address_on_the_web_halls_scheme_host_and_port_is_its_own(url: str) -> None:
    assert is_address_of(url, BASE)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8090@evil.example/", "http://127.0.0.1:8090.evil.example/", "http://127.0.0.1:80901/",
    "http://127.0.0.1:8091/", "https://127.0.0.1:8090/", "http://127.0.0.1/", "http://user@127.0.0.1:8090/",
    "http://evil.example\\@127.0.0.1:8090/", "http://127.0.0.1:8090\\@evil.example/", "http://127.0.0.1:99999/",
    "http://127.0.0.1:8090 /", "javascript:alert(1)", "//127.0.0.1:8090/", "http://127.0.0.2:8090/",
])  # fmt: skip
def test_an_address_that_only_looks_like_the_web_halls_is_not_its_own(url: str) -> None:
    assert not is_address_of(url, BASE)


def test_a_default_port_written_out_or_left_out_is_the_same_port() -> None:
    assert is_address_of("http://hall.example:80/x", "http://hall.example")
    assert is_address_of("https://hall.example/x", "https://hall.example:443")
    assert not is_address_of("http://hall.example:443/x", "http://hall.example")


def test_a_configured_path_is_a_prefix_of_whole_segments() -> None:
    base = "https://hall.example/shop/"
    assert is_address_of("https://hall.example/shop", base)
    assert is_address_of("https://hall.example/shop/result/1", base)
    assert not is_address_of("https://hall.example/shopping/result", base)
    assert not is_address_of("https://hall.example/other", base)
    assert not is_address_of("https://hall.example/shop/../admin", base)
    assert not is_address_of("https://hall.example/shop/%2e%2e/admin", base)
