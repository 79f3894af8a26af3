import pytest
from django.test import Client


def test_catalog_requires_login(db):
    response = Client().get("/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_catalog_shows_rows(client_in, make_rows):
    make_rows("photos", ["things/cat.png", "things/<b>x</b>.png"])
    response = client_in.get("/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "things/cat.png" in body
    assert "&lt;b&gt;x&lt;/b&gt;.png" in body
    assert "<b>x</b>" not in body


@pytest.mark.parametrize("target", ["results"])
def test_catalog_fragment(client_in, make_rows, htmx_headers, target):
    make_rows("photos", ["a.png"])
    response = client_in.get("/", HTTP_HX_TARGET=target, **htmx_headers)
    assert "<html" not in response.content.decode()
    assert "a.png" in response.content.decode()
