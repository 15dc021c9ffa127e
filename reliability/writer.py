"""One writer process of the concurrency trial: bridge calls through QueueBridge/ManifestBridge.

``python -m reliability.writer PREFIX ITEMS MANIFESTS OUT`` (data dir from UVCTL_DATA_DIR)
writes the traffic of ``ITEMS`` work items and ``MANIFESTS`` manifests named ``PREFIX-...``
and appends, per call, ``[action, natural key, JournalSeq, Success, Pending]`` to ``OUT``.
"""

from __future__ import annotations

import json
import random
import sys


def natural_key(name: str, settings: dict) -> str:
    """The natural key a bridge call writes, as text (raw or normalized Settings alike)."""
    if "WorkItem" in settings:
        return settings["WorkItem"]["WorkItemHash"]
    if "Event" in settings:
        return settings["Event"]["EventGUID"]
    if "Manifest" in settings:
        return settings["Manifest"]["Hash"]
    if "RunHash" in settings:
        return settings["RunHash"]
    source = settings.get("Attempt", settings)
    attempt = f"#{int(source['AttemptNumber'])}" if "AttemptNumber" in source else ""
    return f"{source['WorkItemHash']}{attempt}"


def main(prefix: str, items: int, manifests: int, out: str) -> int:
    from uvctl.bridge import ManifestBridge, QueueBridge

    from .workload import item_calls, manifest_calls

    rng = random.Random(prefix)
    scripts = [item_calls(prefix, n, rng) for n in range(items)] + [manifest_calls(prefix, m) for m in range(manifests)]
    queue, manifest = QueueBridge(), ManifestBridge()
    with open(out, "w", encoding="utf-8") as handle:
        while scripts:
            i = rng.randrange(min(len(scripts), 4))
            name, settings = scripts[i].pop(0)
            if not scripts[i]:
                scripts.pop(i)
            bridge = queue if name.startswith("QP_") else manifest
            answer = bridge.execute(name, settings)
            handle.write(json.dumps([name, natural_key(name, settings), answer.get("JournalSeq"),
                                     answer.get("Success"), answer.get("Pending", False)]) + "\n")
            handle.flush()
    queue.close()
    manifest.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
