"""The event loop's share of a request, measured offline in this process."""

from __future__ import annotations

import json
import statistics
import time

from benchmarks.serve_load.kinds import Kind


def loop_work(kind: Kind, example: bytes) -> dict | None:
    """What the service's event-loop thread does with one request of this kind besides HTTP
    (FastAPI runs it there: only the endpoint goes to the thread pool): parse the body's
    JSON, validate it with pydantic, jsonable_encoder the answer and json.dumps it. Timed
    here on a body and an answer of the run, the median of 200 repeats, in µs; the
    alternatives: pydantic parsing the JSON itself (model_validate_json) and
    pydantic_core.to_json for the answer."""
    if kind.method != "POST" or not example:
        return None
    from fastapi.encoders import jsonable_encoder
    from pydantic_core import to_json

    from hashindex.app.serve.schema import BatchBody, SearchBody

    model = BatchBody if kind.path.endswith("/batch") else SearchBody
    body = kind.bodies[0]
    answer = json.loads(example)

    def timed(function) -> float:
        out = []
        for _ in range(200):
            started = time.perf_counter()
            function()
            out.append(time.perf_counter() - started)
        return 1e6 * statistics.median(out)

    parsed = json.loads(body)
    return {
        "kind": kind.name, "request_bytes": len(body), "response_bytes": len(example),
        "json.loads body": timed(lambda: json.loads(body)),
        "pydantic validate": timed(lambda: model.model_validate(parsed)),
        "model_validate_json": timed(lambda: model.model_validate_json(body)),
        "jsonable_encoder answer": timed(lambda: jsonable_encoder(answer)),
        "json.dumps answer": timed(lambda: json.dumps(answer, ensure_ascii=False,
                                                      separators=(",", ":"))),
        "pydantic_core.to_json answer": timed(lambda: to_json(answer)),
    }

