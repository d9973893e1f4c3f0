"""Load on the query service: `hashindex serve` started on a free loopback port (127.0.0.1),
driven by 1, 8 and 32 concurrent clients, each a sequential loop on its own keep-alive
HTTP/1.1 connection. Kinds of request: text queries (one sentence of at most 20 words from the
bundled sample, embedded by the service), embedding queries (384 floats), code queries (hex)
and POST /search/batch with 16 queries each; GET /health gives the floor of the HTTP stack.
Two indexes: the bundled sample (text model included) and N synthetic documents built from
precomputed clustered embeddings (default 1M, 64 bits, no text model: embedding, code and
batch only). Both are built once into --work and reused.

Every cell runs for --seconds or --max-requests, whichever comes first, after an untimed
warm-up; a hard --timeout ends the whole run. Per cell: requests/s, queries/s, client-side
p50/p95/p99 latency, errors (non-200 answers and transport errors), the client's and the
server's CPU (the server's event-loop thread apart), and the server's own timings (embed /
search / total) from each answer. The load client runs on the same machine as the server.
Writes benchmarks/results/serve_load.{md,csv,png} (--quick: small sizes, 2 s per cell,
results under --work unless --out is given).

    python -m benchmarks.serve_load [--documents 1000000] [--seconds 10] [--work DIR] [--quick]

The modules, one job each (imports only downward in this list):

- `fixtures`: the indexes it builds (the bundled sample, N synthetic documents) and the query
  sentences and embeddings; `living_index` builds its base from here too
- `kinds`: the kinds of request, each a pool of pre-rendered bodies
- `client`: one simulated client's connection (the hand-written HTTP/1.1 client, or httpx)
- `server`: `hashindex serve` on loopback, with its CPU time and model batches
- `stats`: the samples of a cell and their summary row; the event loop's share, offline
- `driver`: the load generator (loopback only; every cell stops by its time or request budget,
  the whole run by a hard timeout)
- `report`: the markdown report and its plot
- `__main__`: the command line
"""

HOST = "127.0.0.1"  # loopback only: the server binds it and the clients connect to it
