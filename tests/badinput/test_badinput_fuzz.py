"""Fuzzed bad input: descriptors mutated at random through ``uvctl schema ddl`` / ``plan``, and
random bridge-action Settings through ``normalize_action``. Either accepted, or refused with
one clean error; never a traceback or an unexpected exception."""

from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_badinput_corpus import assert_clean_error

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) |
    st.text(max_size=40) | st.sampled_from(["String", "Integer", "AutoIdentity", "Default", "10,2", "", "x;--"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def _paths(node, prefix=()):
    """Every path into the descriptor's JSON tree."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


@st.composite
def mutated_descriptors(draw):
    from uvctl.schema import builtin_descriptor

    descriptor = copy.deepcopy(builtin_descriptor())
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(descriptor) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = descriptor
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "duplicate"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
        else:
            parent[path[-1]] = draw(JSON)
    return descriptor


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(descriptor=mutated_descriptors())
def test_fuzzed_descriptors_are_accepted_or_refused_cleanly(descriptor, cli_runner, tmp_path):
    path = tmp_path / "descriptor.json"
    path.write_text(json.dumps(descriptor))
    for args in (["schema", "ddl", "--dialect", "postgres", "--schema", str(path)],
                 ["schema", "ddl", "--dialect", "mysql", "--schema", str(path)]):
        result = cli_runner(args)
        if result.exit_code != 0:
            assert_clean_error(result, multiline_ok=True)


ACTIONS = st.sampled_from(["QP_UpsertWorkItem", "QP_UpdateWorkItem", "QP_AppendEvent", "QP_InsertAttempt",
                           "QP_UpdateAttemptOutcome", "MS_UpsertManifest", "MS_RemoveManifest", "QP_ListWorkItems",
                           "QP_GetEvents", "MS_ListManifests", "QP_Bogus"])
RECORDS = st.dictionaries(
    st.sampled_from(["WorkItemHash", "Hash", "RunHash", "EventGUID", "AttemptNumber", "Status", "Priority", "Live",
                     "Settings", "Health", "Seq", "Deleted", "Filter", "Limit", "OrderBy", "Patch", "x"]),
    JSON, max_size=6)


@settings(max_examples=300, deadline=None)
@given(name=ACTIONS, settings_=st.one_of(JSON, st.fixed_dictionaries({}, optional={
    "WorkItem": RECORDS, "Event": RECORDS, "Attempt": RECORDS, "Manifest": RECORDS, "Patch": RECORDS,
    "WorkItemHash": JSON, "AttemptNumber": JSON, "RunHash": JSON, "Filter": RECORDS, "Limit": JSON})))
def test_fuzzed_bridge_settings_normalize_or_raise_a_usage_error(name, settings_):
    from uvctl.errors import UsageError
    from uvctl.journal import normalize_action

    try:
        action = normalize_action(name, settings_)
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    json.dumps(action.settings)  # whatever was accepted can be journaled as JSON
