"""The operator's console for a running Ultravisor's own persistence assignment.

``uvctl coordinator ...`` talks to the coordinator's HTTP API (never to its disk):

- :mod:`.connect`: a coordinator client that logs in on demand (password from
  ``UVCTL_COORDINATOR_PASSWORD`` or a prompt) and caches the session cookie;
- :mod:`.databeacon`: a databeacon's record, capabilities and connections (route hashes);
- :mod:`.watch`: following ``/Ultravisor/Persistence/Status`` until a final state;
- :mod:`.assign`: name → current BeaconID, Assign, watch;
- :mod:`.doctor`: checks that writes can really land, and the repair that worked live.

Exit codes of the commands that wait (documented in their ``--help``):
"""

#: Both bridges reached ``bootstrapped`` (or the command did what was asked).
EXIT_OK = 0
#: The databeacon is not registered, or registered but not answering.
EXIT_NO_BEACON = 4
#: A bridge reached ``error`` (its LastError says why).
EXIT_ERROR = 5
#: Still ``waiting-for-beacon`` or ``bootstrapping`` when the timeout ran out.
EXIT_TIMEOUT = 6
#: Nothing is assigned (``status --watch``).
EXIT_UNASSIGNED = 7
#: ``doctor`` found problems (after ``--repair``: problems left).
EXIT_UNHEALTHY = 8
