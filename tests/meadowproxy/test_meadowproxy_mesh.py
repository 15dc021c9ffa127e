"""The meadowproxy backend over the mesh: coordinator stub → databeacon stub → real meadow server."""

import getpass

import pytest

from uvctl import host
from uvctl.actions import Action
from uvctl.errors import BackendUnavailable, UvctlError
from uvctl.mesh import Coordinator

pytestmark = pytest.mark.node  # the real meadow REST server (tests/meadowproxy/meadow_server)


@pytest.fixture
def backend(mesh_options, databeacon):
    handle = host.open_backend("meadowproxy", mesh_options)
    yield handle
    host.close(handle)


def upsert(hash_, **extra):
    return Action("QP_UpsertWorkItem", {"WorkItem": {"WorkItemHash": hash_, "Status": "Pending", **extra}})


def test_bootstrap_runs_the_databeacon_sequence_on_the_assigned_beacon(backend, databeacon, coordinator):
    result = host.bootstrap(backend)
    assert result.state == "bootstrapped", result.reason
    steps = [(c, a) for c, a, _ in databeacon.received]
    tables = ["UVQueueWorkItem", "UVQueueWorkItemEvent", "UVQueueWorkItemAttempt", "UVManifest"]
    assert steps[:11] == (
        [("DataBeaconAccess", "ListConnections"), ("DataBeaconSchema", "EnsureSchema")]
        + [("DataBeaconManagement", "Introspect")] * 4
        + [("DataBeaconManagement", "UpdateProxyConfig")]
        + [("DataBeaconManagement", "EnableEndpoint")] * 4
    )
    ensure = databeacon.received[1][2]
    assert ensure["IDBeaconConnection"] == 1 and ensure["SchemaName"] == "ultravisor"
    assert isinstance(ensure["SchemaJSON"], dict) and len(ensure["SchemaJSON"]["Tables"]) == 4
    assert [s["TableName"] for _, a, s in databeacon.received if a == "Introspect"] == tables
    assert databeacon.received[6][2]["PathAllowlist"] == [
        r"^/?1\.0/uv-test-persistence/(UVQueueWorkItem|UVQueueWorkItemEvent|UVQueueWorkItemAttempt|UVManifest)s?(/|$)"
    ]
    # then a read on every base, through MeadowProxy
    reads = [s["Path"] for c, _, s in databeacon.received[11:] if c == "MeadowProxy"]
    assert reads == [f"/1.0/uv-test-persistence/{t}s/Count" for t in tables]
    assert all(d["AffinityKey"] == "db1" and d["RequireAffinityMatch"] is True for d in coordinator.dispatches)
    assert result.details["EndpointBases"]["UVManifest"] == "/1.0/uv-test-persistence/UVManifest"


def test_writes_and_reads_travel_as_meadowproxy_requests(backend, databeacon, db_rows):
    assert host.bootstrap(backend).state == "bootstrapped"
    databeacon.received.clear()
    answers = host.dispatch(backend, [
        upsert("w/1 ü"),
        Action("QP_UpdateWorkItem", {"WorkItemHash": "w/1 ü", "Patch": {"Status": "Running"}}),
        Action("QP_AppendEvent", {"Event": {"EventGUID": "g1", "WorkItemHash": "w/1 ü", "Seq": 1}}),
        Action("QP_AppendEvent", {"Event": {"EventGUID": "g1", "WorkItemHash": "w/1 ü", "Seq": 1}}),
        Action("QP_GetWorkItemByHash", {"WorkItemHash": "w/1 ü"}),
    ])
    assert [a["Success"] for a in answers] == [True] * 5
    assert answers[3].get("AlreadyPresent") and answers[4]["WorkItem"]["Status"] == "Running"
    requests = [s for c, _, s in databeacon.received]
    assert {c for c, _, _ in databeacon.received} == {"MeadowProxy"}
    assert all(s["RemoteUser"] == f"uvctl:{getpass.getuser()}" for s in requests)
    assert all(isinstance(s.get("Body", ""), str) for s in requests)
    assert [r["Status"] for r in db_rows("UVQueueWorkItem")] == ["Running"]


def test_a_second_bootstrap_without_endpoint_base_still_routes_to_the_hash(backend, mesh_options, databeacon):
    assert host.bootstrap(backend).state == "bootstrapped"
    other = host.open_backend("meadowproxy", mesh_options)
    try:
        result = host.bootstrap(other)  # EnableEndpoint now answers "already enabled", no EndpointBase
        assert result.state == "bootstrapped"
        assert result.details["EndpointBases"]["UVQueueWorkItem"] == "/1.0/uv-test-persistence/UVQueueWorkItem"
        assert host.dispatch(other, [upsert("w1")])[0]["Success"]
    finally:
        host.close(other)


def test_an_allowlist_reset_marks_the_backend_for_rebootstrap(make_databeacon, mesh_options):
    beacon = make_databeacon(default_allowlist=False)  # only what UpdateProxyConfig pushes is allowed
    backend = host.open_backend("meadowproxy", mesh_options)
    try:
        assert host.bootstrap(backend).state == "bootstrapped"
        beacon.reset()  # the databeacon restarted: its runtime allowlist is gone
        answer = host.dispatch(backend, [upsert("w1"), upsert("w2")])
        assert all(a["Success"] is False and a["NeedsBootstrap"] for a in answer)
        assert "allowlist" in answer[0]["Reason"]
        assert host.bootstrap(backend).state == "bootstrapped"
        assert [a["Success"] for a in host.dispatch(backend, [upsert("w1"), upsert("w2")])] == [True, True]
    finally:
        host.close(backend)


def test_an_unknown_beacon_name_fails_fast_with_a_clear_error(coordinator, databeacon, mesh_options):
    backend = host.open_backend("meadowproxy", {**mesh_options, "Beacon": "db9", "TimeoutMs": "60000"})
    try:
        result = host.bootstrap(backend)
        assert result.state == "waiting-for-beacon" and "'db9' is not registered" in result.reason
        with pytest.raises(BackendUnavailable, match=r"beacon 'db9' is not registered .*registered: db1"):
            host.dispatch(backend, [upsert("w1")])
        assert coordinator.dispatches == []  # nothing was left to strand in the queue
    finally:
        host.close(backend)


def test_a_silent_beacon_times_out_with_a_clear_error(backend, databeacon, mesh_options):
    assert host.bootstrap(backend).state == "bootstrapped"
    databeacon.hang = True
    quick = host.open_backend("meadowproxy", {**mesh_options, "RouteHash": "uv-test-persistence", "TimeoutMs": "300"})
    try:
        with pytest.raises(BackendUnavailable, match=r"beacon 'db1' did not finish MeadowProxy/Request within 300 ms"):
            host.dispatch(quick, [upsert("w1")])
    finally:
        host.close(quick)


def test_secured_coordinator_login_and_masked_password(make_coordinator):
    coordinator = make_coordinator(secured=True, users={"ops": "s3cret"})
    with Coordinator(coordinator.url.replace("http://", "http://ops:s3cret@")) as client:
        assert client.list_beacons() == []
        assert "s3cret" not in client.display_url
    with pytest.raises(UvctlError, match="requires a login"):
        Coordinator(coordinator.url).list_beacons()
    with pytest.raises(UvctlError, match="login to the coordinator .* as 'ops' failed") as info:
        Coordinator(coordinator.url.replace("http://", "http://ops:wrong@")).list_beacons()
    assert "wrong" not in str(info.value)


def test_coordinator_client_retries_503_then_succeeds(coordinator, databeacon):
    client = Coordinator(coordinator.url, backoff=0.01)
    coordinator.fail_next = 2
    outputs = client.dispatch("DataBeaconAccess", "ListConnections", {}, "db1", 5000)
    assert outputs["Connections"][0]["Name"] == "UV Test Persistence"
    coordinator.fail_next = 10
    with pytest.raises(BackendUnavailable):
        client._beacon_seen.clear()
        client.dispatch("DataBeaconAccess", "ListConnections", {}, "db1", 5000)
    client.close()


def test_a_beacon_without_the_capability_is_a_clear_error(coordinator, databeacon):
    from uvctl.mesh import WorkError

    with Coordinator(coordinator.url) as client:
        with pytest.raises(WorkError, match="does not provide Nope/Nothing"):
            client.dispatch("Nope", "Nothing", {}, "db1", 5000)


def test_a_reconnected_beacon_is_bootstrapped_again(backend, databeacon):
    assert host.bootstrap(backend).state == "bootstrapped"
    backend.state["transport"].coordinator.beacon_ttl = 0  # look the beacon up on every request
    assert host.dispatch(backend, [upsert("w1")])[0]["Success"]
    databeacon.reconnect()  # a new BeaconID: the databeacon restarted and lost its runtime config
    answer = host.dispatch(backend, [upsert("w2")])[0]
    assert answer["Success"] is False and answer["NeedsBootstrap"] and "re-registered" in answer["Reason"]
    assert host.bootstrap(backend).state == "bootstrapped"
    assert host.dispatch(backend, [upsert("w2")])[0]["Success"]


def test_tls_is_verified_by_default(make_coordinator, tmp_path, monkeypatch):
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    coordinator = make_coordinator(tls=(str(cert), str(key)))
    assert coordinator.url.startswith("https://")
    with pytest.raises(UvctlError, match="TLS certificate .* could not be verified .*SSL_CERT_FILE"):
        Coordinator(coordinator.url).list_beacons()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the private CA, trusted explicitly
    with Coordinator(coordinator.url) as client:
        assert client.list_beacons() == []


def test_a_session_cached_by_coordinator_login_is_used(make_coordinator):
    from uvctl.mesh.session import SessionCache

    coordinator = make_coordinator(secured=True, users={"ops": "s3cret"})
    options = {"Transport": "mesh", "Url": coordinator.url, "Beacon": "db1", "RouteHash": "uv-test-persistence"}
    without = host.open_backend("meadowproxy", options)
    try:
        result = host.bootstrap(without)
        assert result.state == "error" and "uvctl coordinator login" in result.reason
    finally:
        host.close(without)
    with Coordinator(coordinator.url.replace("http://", "http://ops:s3cret@")) as client:
        client.login()
        SessionCache().save(client.base_url, client._http().client.cookies["SessionID"], "ops")
    cached = host.open_backend("meadowproxy", options)
    try:
        result = host.bootstrap(cached)  # logged in now: the only problem left is the missing beacon
        assert result.state == "waiting-for-beacon" and "'db1' is not registered" in result.reason
    finally:
        host.close(cached)


def test_a_body_damaged_by_the_proxy_is_asked_again_never_used(backend, databeacon):
    assert host.bootstrap(backend).state == "bootstrapped"
    assert host.dispatch(backend, [upsert("w1", LastError="Grüße 日本")])[0]["Success"]
    get = Action("QP_GetWorkItemByHash", {"WorkItemHash": "w1"})
    databeacon.damage = 1  # once: the second try is whole
    assert host.dispatch(backend, [get])[0]["WorkItem"]["LastError"] == "Grüße 日本"
    databeacon.damage = 100  # always: a clear failure instead of silently wrong text
    answer = host.dispatch(backend, [get])[0]
    assert answer["Success"] is False and "arrived damaged 3 times" in answer["Reason"]


def test_a_route_hash_shared_by_two_connections_is_refused(backend, databeacon):
    databeacon.other_connections.append({"IDBeaconConnection": 4, "Name": "uv test persistence!", "Type": "SQLite"})
    result = host.bootstrap(backend)
    assert result.state == "error"
    assert "also the route hash of connection 4 'uv test persistence!'" in result.reason
    assert not any(a == "EnsureSchema" for _, a, _ in databeacon.received)  # stopped before any change
