"""Route hashes (databeacon sanitizer vectors), endpoint bases, filter encoding, allowlist."""

import re

import pytest

from uvctl.errors import UsageError
from uvctl_meadowproxy import routes


@pytest.mark.parametrize(
    "name, expected",
    [
        ("UV External", "uv-external"),
        ("Über-Café", "uber-cafe"),
        ("İstanbul DB", "istanbul-db"),
        ("ﬁle ② Ⅻ", "file-2-xii"),
        ("Straße", "stra-e"),
        ("  _x_  ", "x"),
        ("a" * 63 + " b", "a" * 63 + "-"),
        ("UV Persistence", "uv-persistence"),
        ("Scratch-DB!", "scratch-db"),
    ],
)
def test_sanitizer_matches_the_databeacon_vectors(name, expected):
    assert routes.sanitize_connection_name(name) == expected


@pytest.mark.parametrize("name", ["数据库", "!!!", ""])
def test_unsanitizable_names_fall_back_to_conn_id(name):
    if name:
        with pytest.raises(ValueError):
            routes.sanitize_connection_name(name)
    assert routes.route_hash_for(name, 7) == ("conn-7" if name else "")


def test_endpoint_bases_with_and_without_route_hash():
    assert routes.endpoint_base("uv-external", "UVManifest") == "/1.0/uv-external/UVManifest"
    assert routes.endpoint_base("", "UVManifest") == "/1.0/UVManifest"
    assert routes.bases_for("h")["UVQueueWorkItemEvent"] == "/1.0/h/UVQueueWorkItemEvent"


@pytest.mark.parametrize(
    "value, encoded",
    [("a b", "a%20b"), ("a/b", "a%2Fb"), ("a%b", "a%25b"), ("a+b", "a%2Bb"), ("ü€", "%C3%BC%E2%82%AC"),
     ("a?b#c", "a%3Fb%23c"), (True, "1"), (5, "5")],
)
def test_filter_values_are_percent_encoded_once(value, encoded):
    assert routes.filter_value(value) == encoded


@pytest.mark.parametrize("value", ["a~b", "~", "x~FBV~Deleted~EQ~1"])
def test_tilde_is_refused_with_a_clear_error(value):
    with pytest.raises(UsageError, match="contains '~'"):
        routes.filter_value(value)


def test_filter_terms_and_paths():
    terms = [routes.fbv("WorkItemHash", "w 1"), routes.fbv("AttemptNumber", 2), routes.fsf("Seq", descending=True)]
    assert routes.filtered_path("/1.0/h/UVQueueWorkItemAttempt", terms, 250, 250) == (
        "/1.0/h/UVQueueWorkItemAttempts/FilteredTo/FBV~WorkItemHash~EQ~w%201~FBV~AttemptNumber~EQ~2~FSF~Seq~DESC~0/250/250"
    )
    assert routes.fbl("Status", ["A", "B"]) == "FBL~Status~INN~A,B"
    with pytest.raises(UsageError, match="','"):
        routes.fbl("Status", ["a,b"])


def test_route_hash_option_is_checked_and_a_fix_suggested():
    assert routes.check_route_hash("uv-persistence") == "uv-persistence"
    assert routes.check_route_hash("conn-12") == "conn-12"
    with pytest.raises(UsageError, match="did you mean 'uv-persistence'"):
        routes.check_route_hash("UV Persistence")


def test_allowlist_pattern_admits_only_this_hash_and_the_uv_tables():
    pattern = re.compile(routes.allowlist_pattern("uv-persistence"))
    for path in ("/1.0/uv-persistence/UVQueueWorkItem", "/1.0/uv-persistence/UVQueueWorkItems/FilteredTo/x/0/5",
                 "1.0/uv-persistence/UVManifest/Undelete/3", "/1.0/uv-persistence/UVQueueWorkItemEvents"):
        assert pattern.search(path), path
    for path in ("/1.0/other/UVQueueWorkItem", "/1.0/uv-persistence/User", "/1.0/BeaconConnections",
                 "/1.0/uv-persistence/UVQueueWorkItemX", "/beacon/connections"):
        assert not pattern.search(path), path
