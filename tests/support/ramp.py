"""Where Temporal's Worker Versioning sends a new run during a ramp, known in advance.

The server decides per workflow id, deterministically: ``calcRampThreshold`` in
temporalio/temporal ``common/worker_versioning/worker_versioning.go`` (v1.29.1, the dev
server's, and main) is ``100 * farm.Fingerprint32(id) / 2**32``, and a run goes to the
ramping version when that is ``<=`` the ramp percentage, else to the current one. Go's
``dgryski/go-farm`` Fingerprint32 and Google's FarmHash ``Fingerprint32`` (pyfarmhash)
agree (checked on sample ids against the Go module).
"""

import uuid

import farmhash

from durable_agents._domain.run import workflow_id_for


def ramp_threshold(workflow_id: str) -> float:
    """The number in [0, 100) the server compares with the ramp percentage."""
    return 100 * farmhash.fingerprint32(workflow_id) / 2**32


def request_ids_by_side(percent: float, each: int) -> tuple[list[str], list[str]]:
    """``each`` request ids whose runs a ``percent`` ramp sends to the ramping version,
    and ``each`` it sends to the current one."""
    ramping: list[str] = []
    current: list[str] = []
    while len(ramping) < each or len(current) < each:
        request_id = f"ramp-{uuid.uuid4().hex[:12]}"
        side = ramping if ramp_threshold(workflow_id_for(request_id)) <= percent else current
        if len(side) < each:
            side.append(request_id)
    return ramping, current
