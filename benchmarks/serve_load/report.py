"""The report of a run: benchmarks/results/serve_load.md (the table, the targets, facts that
point at the bottlenecks, where one request's time goes, the raw-against-httpx comparison),
serve_load.csv (every cell) and serve_load.png (q/s and p99 against clients)."""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.serve_load.kinds import BATCH, K
from indexer.bench.report import write_csv

TARGETS = ("text p50 ≤ 10 ms at 1 client; text ≥ 300 q/s at 32 clients with p99 ≤ 250 ms; "
           "embedding or code queries ≥ 2 000 q/s")


def fmt(value: float, digits: int = 1) -> str:
    return "—" if value != value else f"{value:,.{digits}f}"  # NaN: no such figure


def share(value: float) -> str:
    return "—" if value != value else f"{value:.0f}%"


def index_label(row: dict, args) -> str:
    return ("sample (3,190 docs, text model)" if row["index"] == "sample"
            else f"synthetic {args.documents:,} × 384-d, {args.bits} bits")


def clients_text(n: int) -> str:
    return f"{n} client" + ("s" if n != 1 else "")


def target_lines(rows: list[dict], every: list[dict]) -> list[str]:
    def cell(kind, clients, index="sample"):
        return next((r for r in rows if r["index"] == index and r["kind"] == kind
                     and r["clients"] == clients and r["client"] != "httpx"), None)

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    errors = sum(r["errors"] for r in every)
    lines = [f"- no errors: {verdict(errors == 0)} ({errors} over {len(every)} cells)"]
    one = cell("text", 1)
    if one:
        lines.append(f"- text queries p50 ≤ 10 ms at 1 client: {verdict(one['p50_ms'] <= 10)} "
                     f"(p50 {one['p50_ms']:.2f} ms, of which the server's embed "
                     f"{one['server_embed_p50_ms']:.2f} ms and search "
                     f"{one['server_search_p50_ms']:.2f} ms)")
    many = cell("text", 32)
    if many:
        ok = many["queries_per_s"] >= 300 and many["p99_ms"] <= 250
        lines.append(f"- text queries ≥ 300 q/s at 32 clients with p99 ≤ 250 ms: {verdict(ok)} "
                     f"({many['queries_per_s']:,.0f} q/s, p99 {many['p99_ms']:.1f} ms)")
    fast = [r for r in rows if r["client"] != "httpx" and r["kind"] in ("embedding", "code")]
    if fast:
        best: dict[tuple[str, str], dict] = {}
        for r in fast:
            key = (r["index"], r["kind"])
            if key not in best or r["queries_per_s"] > best[key]["queries_per_s"]:
                best[key] = r
        top = max(best.values(), key=lambda r: r["queries_per_s"])
        each = "; ".join(f"{r['index']} {r['kind']}: {r['queries_per_s']:,.0f} q/s at "
                         f"{clients_text(r['clients'])}" for r in best.values())
        lines.append(f"- embedding or code queries ≥ 2 000 q/s (one query per request): "
                     f"{verdict(top['queries_per_s'] >= 2000)} (the best of each: {each})")
        batched = [r for r in rows if r["client"] != "httpx" and "embeddings" in r["kind"]]
        if batched:
            top = max(batched, key=lambda r: r["queries_per_s"])
            lines.append(f"  - in batches of {BATCH}: {top['queries_per_s']:,.0f} q/s "
                         f"({top['index']}, {clients_text(top['clients'])})")
    return lines


def workers_text(n: int) -> str:
    return "one process" if n == 1 else f"{n} worker processes"


def reading_lines(rows: list[dict], every: list[dict], workers: int = 1) -> list[str]:
    """Facts computed from the cells that point at the bottlenecks."""
    def cell(index, kind, clients, client=None):
        return next((r for r in every if r["index"] == index and r["kind"] == kind
                     and r["clients"] == clients and (client is None or r["client"] == client)),
                    None)

    most = max(rows, key=lambda r: r["clients"])["clients"]
    lines = []
    health = [r for r in rows if r["kind"].startswith("health")]
    if health:
        top = max(health, key=lambda r: r["requests_per_s"])
        lines.append(f"- the HTTP stack alone (GET /health, no search): at most "
                     f"{top['requests_per_s']:,.0f} requests/s, with the server's event-loop "
                     f"thread(s) at {share(top['server_loop_cpu_pct'])} of a core: the "
                     f"ceiling of the service ({workers_text(workers)}) for any request, "
                     "before any search")
    for index in dict.fromkeys(r["index"] for r in rows):
        for kind in ("embedding", f"batch of {BATCH} embeddings"):
            one, many = cell(index, kind, 1, rows[0]["client"]), cell(index, kind, most,
                                                                       rows[0]["client"])
            if one and many and one["queries_per_s"]:
                lines.append(
                    f"- {index} {kind}: {many['queries_per_s']:,.0f} q/s at {most} clients "
                    f"against {one['queries_per_s']:,.0f} at 1 "
                    f"({many['queries_per_s'] / one['queries_per_s']:.2f}×); the server's own "
                    f"total per request grows from {fmt(one['server_total_p50_ms'], 2)} to "
                    f"{fmt(many['server_total_p50_ms'], 2)} ms (p50), with the server at "
                    f"{share(many['server_cpu_pct'])} CPU")
    measured = [r["client_cpu_pct"] for r in rows if r["client_cpu_pct"] == r["client_cpu_pct"]]
    if measured:
        lines.append(f"- the load client ({rows[0]['client']}) used at most "
                     f"{max(measured):.0f}% of a core in any cell")
    httpx_many = cell("sample", "embedding", most, "httpx")
    if httpx_many:
        lines.append(f"- httpx as the client: {share(httpx_many['client_cpu_pct'])} of a core "
                     f"at {most} clients ({httpx_many['requests_per_s']:,.0f} requests/s): it "
                     "would measure itself, not the server")
    return lines


def write_report(out: Path, rows: list[dict], offline: list[dict], machine: str, args,
                 seconds: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "serve_load.csv",
              [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}
               for r in rows])
    main_rows = [r for r in rows if r["client"] == args.client]
    lines = [
        "# Query service under load (`hashindex serve`, loopback)", "",
        f"- machine: {machine}",
        f"- the load client runs on the same machine as the server ({os.cpu_count()} cores "
        f"shared): one Python process, asyncio, one sequential loop per simulated client on its "
        f"own keep-alive HTTP/1.1 connection to 127.0.0.1; client: {args.client} "
        + ("(asyncio streams, a fixed request head, the answer read by Content-Length: see the "
           "httpx comparison below)" if args.client == "raw" else "(httpx.AsyncClient)"),
        (f"- server: `hashindex serve INDEX --workers {args.workers}` (uvicorn, "
         f"{args.workers} worker processes on one socket, each with "
         f"{max(1, (os.cpu_count() or 1) // args.workers)} text-model threads"
         if args.workers > 1 else
         "- server: `hashindex serve INDEX` (uvicorn, one worker process")
        + "; otherwise its defaults: --batch-window-ms 0, --max-text-batch 16, "
        "--reload-interval 1; one access-log line per request, to a file)",
        f"- each cell: an untimed warm-up of {args.warmup:g} s, then {args.seconds:g} s or "
        f"{args.max_requests:,} requests, whichever first; k = {K}; latency is the client's "
        "(request written to answer read), percentiles over the cell's requests",
        "- indexes: the bundled sample (3,190 docstring paragraphs, all-MiniLM-L6-v2 in "
        "openvino, ae:vanilla 64 bits, embeddings stored, as `hashindex build --sample`); "
        f"synthetic: {args.documents:,} clustered 384-d unit vectors (2,000 clusters) from a "
        "Parquet embedding column (`--embedding-column`), ae:vanilla "
        f"{args.bits} bits (5 epochs on 50,000 of them), embeddings stored (int8); no text model",
        "- queries: text: distinct sentences of the sample, at most 20 words, never repeated "
        "within the run; embedding: on the sample the text model's embeddings of such "
        "sentences, on synthetic held-out points of the same clusters (never indexed), 7 "
        "significant digits per float in the JSON; code: the index's own encoder's codes of "
        f"those points (hex); batches: {BATCH} such queries per POST /search/batch",
        "- CPU: the share of one core over the cell's wall time (100% = one core; the machine "
        f"has {os.cpu_count()}): client = this process (getrusage); server = the serve process "
        "and its workers (/proc utime + stime), and their main threads apart, which run "
        "uvicorn's event loops",
        f"- targets (the issue): {TARGETS}",
        f"- whole run {seconds / 60:.1f} min", "",
        "| index | kind | clients | requests/s | queries/s | p50 ms | p95 ms | p99 ms | errors "
        "| server total p50 ms | client CPU | server CPU | server loop thread | texts per model "
        "call |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in main_rows:
        per_call = fmt(r["texts_per_model_call"]) if r["texts_per_model_call"] else "—"
        lines.append(
            f"| {index_label(r, args)} | {r['kind']} | {r['clients']} | "
            f"{fmt(r['requests_per_s'])} | {fmt(r['queries_per_s'])} | {fmt(r['p50_ms'], 2)} | "
            f"{fmt(r['p95_ms'], 2)} | {fmt(r['p99_ms'], 2)} | {r['errors']} | "
            f"{fmt(r['server_total_p50_ms'], 2)} | {share(r['client_cpu_pct'])} | "
            f"{share(r['server_cpu_pct'])} | {share(r['server_loop_cpu_pct'])} | {per_call} |")
    errors = [r for r in rows if r["errors"]]
    lines += ["", f"Errors (non-200 answers and transport errors): "
              f"{sum(r['errors'] for r in rows)} over {len(rows)} cells"
              + "".join(f"; {r['index']} {r['kind']} ×{r['clients']}: {r['error_detail']}"
                        for r in errors) + ".", "", "## Against the targets", "",
              *target_lines(main_rows, rows), "", "## Reading the figures", "",
              *reading_lines(main_rows, rows, args.workers)]
    lines += ["", "## Where the time of one request goes (1 client)", "",
              "The server's timings come from each answer (`timings`: embed = waiting for and "
              "computing the embedding, search = code + table + re-rank + documents, total = "
              "both and the request's checks; a batch: summed over its queries). They start "
              "after the body is parsed and end before the answer is built, so the client's "
              "latency less the server's total is HTTP (uvicorn's h11 parser), FastAPI (body "
              "JSON + pydantic validation, the thread-pool hop, the answer's jsonable_encoder + "
              "json.dumps), middleware and access log, the loopback and this client; its median "
              "is taken request by request. A batch of texts has its one model call before "
              "the queries' timers start (each answer's embed is ≈ 0), so that call is in the "
              "rest. Server CPU per request: the serve process's CPU time over the cell "
              "divided by its requests (the loop thread's apart).", "",
              "| index | kind | client p50 ms | server total p50 ms | embed p50 ms | search p50 ms "
              "| rest (HTTP + JSON + client) p50 ms | server CPU ms / request | of which loop "
              "thread | request bytes | answer bytes |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in main_rows:
        if r["clients"] == 1:
            per = 10 / r["requests_per_s"] if r["requests_per_s"] else float("nan")
            lines.append(
                f"| {r['index']} | {r['kind']} | {fmt(r['p50_ms'], 2)} | "
                f"{fmt(r['server_total_p50_ms'], 2)} | {fmt(r['server_embed_p50_ms'], 2)} | "
                f"{fmt(r['server_search_p50_ms'], 2)} | {fmt(r['overhead_p50_ms'], 2)} | "
                f"{fmt(r['server_cpu_pct'] * per, 2)} | {fmt(r['server_loop_cpu_pct'] * per, 2)} "
                f"| {r['request_bytes']:,.0f} | {r['response_bytes']:,.0f} |")
    if offline:
        names = [k for k in offline[0] if k not in ("index", "kind", "request_bytes",
                                                    "response_bytes")]
        lines += ["", "The event-loop thread's own work per request besides HTTP, timed in the "
                  "client process on a body and an answer of the run (median of 200, µs; "
                  "FastAPI does these on the event loop, only the endpoint runs in the thread "
                  "pool); model_validate_json and pydantic_core.to_json are the alternatives:",
                  "", "| index | kind | " + " | ".join(names) + " |",
                  "|---|---|" + "---:|" * len(names)]
        for m in offline:
            lines.append(f"| {m['index']} | {m['kind']} | "
                         + " | ".join(f"{m[n]:,.0f}" for n in names) + " |")
    compared = [r for r in rows if r["index"] == "sample" and r["kind"] == "embedding"
                and r["clients"] in (1, max(args.clients))]
    if any(r["client"] == "httpx" for r in compared):
        lines += ["", "## Load client: raw asyncio streams against httpx", "",
                  "The sample's embedding queries, the same server, the same bodies:", "",
                  "| client | clients | requests/s | p50 ms | p99 ms | client CPU | server CPU |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for r in sorted(compared, key=lambda r: (r["client"], r["clients"])):
            lines.append(f"| {r['client']} | {r['clients']} | {fmt(r['requests_per_s'])} | "
                         f"{fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} | "
                         f"{share(r['client_cpu_pct'])} | {share(r['server_cpu_pct'])} |")
    (out / "serve_load.md").write_text("\n".join(lines) + "\n")
    plot(out / "serve_load.png", main_rows, args)
    print("\n".join(lines), flush=True)


def plot(path: Path, rows: list[dict], args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    indexes = list(dict.fromkeys(r["index"] for r in rows))
    fig, axes = plt.subplots(2, len(indexes), figsize=(5.5 * len(indexes), 7.5), squeeze=False)
    for column, name in enumerate(indexes):
        mine = [r for r in rows if r["index"] == name]
        for kind in dict.fromkeys(r["kind"] for r in mine):
            cells = [r for r in mine if r["kind"] == kind]
            clients = [r["clients"] for r in cells]
            axes[0][column].plot(clients, [r["queries_per_s"] for r in cells], "o-", label=kind)
            axes[1][column].plot(clients, [r["p99_ms"] for r in cells], "o-", label=kind)
        axes[0][column].set_title(index_label(mine[0], args))
        for row, label in ((0, "queries/s"), (1, "p99 latency (ms)")):
            ax = axes[row][column]
            ax.set_xscale("log", base=2)
            if row == 1:
                ax.set_yscale("log")
            else:
                ax.set_ylim(bottom=0)
            ax.set_xticks(args.clients, [str(c) for c in args.clients])
            ax.set_xlabel("concurrent clients")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0][column].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
