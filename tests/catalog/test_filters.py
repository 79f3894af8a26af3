"""Every catalog filter operator on real rows, through the catalog page (what a curator sees)."""

from __future__ import annotations

import re

import pytest

from catalog.models import MetadataField

KINDS = {
    "species": MetadataField.Kind.ENUM,
    "weight": MetadataField.Kind.NUMBER,
    "taken": MetadataField.Kind.DATETIME,
    "caption": MetadataField.Kind.STRING,
}


@pytest.fixture
def zoo(make_rows):
    keys = ["animals/cat.png", "animals/dog.png", "animals/cow.png", "food/apple.png", "food/pear.png"]
    meta = [
        {"species": "cat", "weight": 4.5, "taken": "2024-01-10T08:00:00Z", "caption": "A grey Cat"},
        {"species": "dog", "weight": 12, "taken": "2024-03-01T12:00:00Z", "caption": "good dog"},
        {"species": "cow", "weight": 600, "taken": "2023-07-04T00:00:00Z", "caption": "cow in a field"},
        {"caption": "red apple", "weight": 0.2, "taken": "2024-02-02T00:00:00Z"},
        {"caption": "green pear", "weight": 0.18},
    ]
    return make_rows("zoo", keys, meta, KINDS)


def shown_keys(response) -> list[str]:
    return re.findall(r'<span class="caption" title="([^"]+)"', response.content.decode())


def keys_for(client, query: str) -> set[str]:
    response = client.get("/?" + query)
    assert response.status_code == 200
    return set(shown_keys(response))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("key=dog", {"animals/dog.png"}),
        ("key=ANIMALS&key_op=contains", {"animals/cat.png", "animals/dog.png", "animals/cow.png"}),
        ("key=food/&key_op=startswith", {"food/apple.png", "food/pear.png"}),
        ("key=apple&key_op=startswith", set()),
        ("f=species&op=eq&v=cat", {"animals/cat.png"}),
        ("f=folder&op=eq&v=food", {"food/apple.png", "food/pear.png"}),
        ("f=caption&op=contains&v=cat", {"animals/cat.png"}),
        ("f=species&op=in&v=cat,+cow", {"animals/cat.png", "animals/cow.png"}),
        ("f=weight&op=eq&v=12", {"animals/dog.png"}),
        ("f=weight&op=range&v=1&v2=100", {"animals/cat.png", "animals/dog.png"}),
        ("f=weight&op=range&v=100", {"animals/cow.png"}),
        ("f=weight&op=range&v2=0.19", {"food/pear.png"}),
        ("f=taken&op=range&v=2024-01-01&v2=2024-02-28", {"animals/cat.png", "food/apple.png"}),
        ("f=taken&op=range&v=2024-03-01T12:00", {"animals/dog.png"}),
        # AND (default) and OR between conditions
        ("f=folder&op=eq&v=animals&f=weight&op=range&v=10&v2=", {"animals/dog.png", "animals/cow.png"}),
        ("combine=or&f=species&op=eq&v=cat&f=caption&op=contains&v=pear", {"animals/cat.png", "food/pear.png"}),
        ("combine=or&key=apple&f=species&op=eq&v=dog", {"food/apple.png", "animals/dog.png"}),
    ],
)
def test_filter_operator_shows_matching_rows(client_in, zoo, query, expected):
    assert keys_for(client_in, query) == expected


def test_dataset_filter_scopes_every_condition(client_in, zoo, make_rows):
    make_rows("other", ["animals/cat-2.png"], [{"species": "cat"}], KINDS)
    assert keys_for(client_in, "f=species&op=eq&v=cat") == {"animals/cat.png", "animals/cat-2.png"}
    dataset_id = zoo[0].dataset_id
    assert keys_for(client_in, f"dataset={dataset_id}&combine=or&f=species&op=eq&v=cat") == {"animals/cat.png"}


def test_count_reports_matching_rows(client_in, zoo, htmx_headers):
    response = client_in.get("/count/?f=folder&op=eq&v=animals", **htmx_headers)
    assert "3 rows match the filter" in response.content.decode()
    response = client_in.get("/count/", **htmx_headers)
    assert "5 rows match" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("f=weight&op=range&v=heavy", "Field &#x27;weight&#x27; is a number; &#x27;heavy&#x27; is not."),
        ("f=taken&op=range&v=yesterday", "is a date/time"),
        ("f=caption&op=range&v=a", "a range needs a number or date/time field"),
        ("f=nosuch&op=eq&v=1", "Unknown metadata field &#x27;nosuch&#x27;."),
    ],
)
def test_bad_filter_value_is_reported_next_to_the_condition(client_in, zoo, query, message):
    body = client_in.get("/?" + query).content.decode()
    assert message in body
    assert 'id="select-all" disabled' in body


def test_sort_by_global_key(client_in, zoo):
    response = client_in.get("/?sort=key")
    assert shown_keys(response) == sorted(r.global_key for r in zoo)
    response = client_in.get("/")
    assert shown_keys(response) == [r.global_key for r in reversed(zoo)]
