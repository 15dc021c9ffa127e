"""``host.dispatch`` calls ``uvctl_normalize`` once per action with pluggy's semantics:
implementations in pluggy's order, the first non-None answer wins, and hook wrappers and
hook-call monitoring still see every call."""

from __future__ import annotations

import pytest

from uvctl import host
from uvctl.actions import Action
from uvctl.backend import Backend, BackendInfo
from uvctl.hookspecs import hookimpl

NAME = "normtest"


class RawBackend:
    """Dispatch answers raw tuples; two normalize implementations, the tryfirst one declines odd actions."""

    calls: list

    @hookimpl
    def uvctl_register_backends(self, register):
        register(BackendInfo(name=NAME, summary="normalize test"))

    @hookimpl
    def uvctl_dispatch(self, backend, actions):
        if backend.name != NAME:
            return None
        return [("raw", a.seq) for a in actions]

    @hookimpl(tryfirst=True)
    def uvctl_normalize(self, backend, action, raw):
        if backend.name != NAME:
            return None
        RawBackend.calls.append(("first", action.seq))
        return None if action.seq % 2 else {"Available": True, "Success": True, "By": "first", "Raw": list(raw)}


class LaterNormalize:
    @hookimpl
    def uvctl_normalize(self, action, raw):  # takes a subset of the arguments, as pluggy allows
        if raw[0] != "raw":
            return None
        RawBackend.calls.append(("later", action.seq))
        return {"Available": True, "Success": True, "By": "later", "Raw": list(raw)}


class Wrapper:
    seen: list

    @hookimpl(wrapper=True)
    def uvctl_normalize(self, backend, action, raw):
        answer = yield
        Wrapper.seen.append(action.seq)
        return {**answer, "Wrapped": True} if answer else answer


@pytest.fixture
def plugins():
    RawBackend.calls, Wrapper.seen = [], []
    host.register_plugin(RawBackend(), "normtest-backend")
    host.register_plugin(LaterNormalize(), "normtest-later")
    yield
    host.unregister_plugin("normtest-later")
    host.unregister_plugin("normtest-backend")


def _dispatch(count=4):
    backend = Backend(name=NAME, options={}, identity=NAME, data_dir=".")
    return host.dispatch(backend, [Action("QP_AppendEvent", {}, seq) for seq in range(1, count + 1)])


def test_each_action_is_normalized_by_the_first_answering_implementation(plugins):
    answers = _dispatch()
    assert [a["By"] for a in answers] == ["later", "first", "later", "first"]
    assert [a["Raw"] for a in answers] == [["raw", n] for n in (1, 2, 3, 4)]
    assert RawBackend.calls == [("first", 1), ("later", 1), ("first", 2), ("first", 3), ("later", 3), ("first", 4)]


def test_a_hook_wrapper_sees_and_changes_every_answer(plugins):
    host.register_plugin(Wrapper(), "normtest-wrapper")
    try:
        answers = _dispatch()
    finally:
        host.unregister_plugin("normtest-wrapper")
    assert Wrapper.seen == [1, 2, 3, 4]
    assert all(a["Wrapped"] for a in answers)
    assert [a["By"] for a in answers] == ["later", "first", "later", "first"]


def test_hook_call_monitoring_sees_every_normalize_call(plugins):
    traced = []
    undo = host.pm.add_hookcall_monitoring(lambda name, impls, kwargs: traced.append(name), lambda *a: None)
    try:
        answers = _dispatch(3)
    finally:
        undo()
    assert traced.count("uvctl_normalize") == 3
    assert [a["By"] for a in answers] == ["later", "first", "later"]


class LooseAnswers:
    """Normalizes to envelopes a careless plugin might write: a string Success, a bare string."""

    @hookimpl(tryfirst=True)
    def uvctl_normalize(self, backend, action, raw):
        if backend.name != NAME:
            return None
        return [{"Success": "false"}, "ok", {"Success": True, "AlreadyPresent": "yes"}, {"Success": True}][action.seq - 1]


def test_an_answer_without_a_boolean_success_is_a_failure_never_a_delivery(plugins):
    host.register_plugin(LooseAnswers(), "normtest-loose")
    try:
        answers = _dispatch(4)
    finally:
        host.unregister_plugin("normtest-loose")
    assert [a["Success"] for a in answers] == [False, False, False, True]
    assert "Success='false'" in answers[0]["Reason"] and "with a str" in answers[1]["Reason"]
    assert "AlreadyPresent='yes'" in answers[2]["Reason"]
    assert all("update or fix its plugin" in a["Reason"] for a in answers[:3])


class StringBootstrap:
    @hookimpl
    def uvctl_bootstrap(self, backend):
        return "bootstrapped" if backend.name == NAME else None


def test_a_bootstrap_answer_that_is_not_a_bootstrap_result_is_an_error(plugins):
    host.register_plugin(StringBootstrap(), "normtest-bootstrap")
    try:
        result = host.bootstrap(Backend(name=NAME, options={}, identity=NAME, data_dir="."))
    finally:
        host.unregister_plugin("normtest-bootstrap")
    assert result.state == "error" and "answered the bootstrap with str" in result.reason
