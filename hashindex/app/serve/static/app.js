// The search page: asks the service's own /info and /search, and writes every piece of text
// with textContent (never innerHTML), so a document's text can never become markup.
"use strict";

(function () {
  const SNIPPET_CHARS = 280;
  const $ = (id) => document.getElementById(id);
  const form = $("search");
  const query = $("query");
  const kSelect = $("k");
  const submit = $("submit");
  const errorBox = $("error");
  const figures = $("figures");
  const notes = $("notes");
  const results = $("results");
  const body = results.querySelector("tbody");
  const empty = $("empty");

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function labelled(label, value) {
    const span = el("span");
    span.append(label + " ", el("b", null, value));
    return span;
  }

  function number(value) {
    return typeof value === "number" ? value.toLocaleString("en-US") : String(value);
  }

  async function getJSON(response) {
    try {
      return await response.json();
    } catch (_) {
      return null;
    }
  }

  async function loadInfo() {
    const info = $("info");
    try {
      const response = await fetch("/info");
      const data = await getJSON(response);
      if (!response.ok || !data) {
        info.textContent = (data && data.error) || "index information unavailable";
        return;
      }
      const model = data.embedding_model;
      const modelName = model && typeof model === "object" ? model.name : model;
      info.textContent = "";
      const parts = [
        ["documents", number(data.documents)],
        ["bits", data.bits],
        ["model", modelName],
        ["variant", data.variant],
      ];
      parts.forEach(([label, value], at) => {
        if (value === undefined || value === null) return;
        if (at > 0 && info.childNodes.length) info.append("  ·  ");
        info.append(label + " ", el("b", null, value));
      });
    } catch (_) {
      info.textContent = "index information unavailable (the service did not answer)";
    }
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function clearResults() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    figures.hidden = true;
    notes.hidden = true;
    results.hidden = true;
    empty.hidden = true;
    body.replaceChildren();
  }

  function snippetCell(text) {
    const cell = el("td", "text");
    const full = text == null ? "" : String(text);
    if (full.length <= SNIPPET_CHARS) {
      cell.textContent = full;
      return cell;
    }
    const short = full.slice(0, SNIPPET_CHARS).trimEnd() + "…";
    const span = el("span", null, short);
    const toggle = el("button", "more", "more");
    toggle.type = "button";
    toggle.addEventListener("click", () => {
      const expanded = toggle.textContent === "less";
      span.textContent = expanded ? short : full;
      toggle.textContent = expanded ? "more" : "less";
    });
    cell.append(span, toggle);
    return cell;
  }

  function metadataCell(metadata) {
    const cell = el("td", "meta");
    for (const [key, value] of Object.entries(metadata || {})) {
      const shown = typeof value === "string" ? value : JSON.stringify(value);
      const chip = el("span", "chip");
      chip.title = key + ": " + shown;
      chip.append(el("span", "key", key + ": "), shown);
      cell.append(chip);
    }
    return cell;
  }

  // The service's time: "milliseconds", or "timings" {stage: ms} with a "total".
  function timeFigure(data) {
    const timings = data.timings && typeof data.timings === "object" ? data.timings : {};
    const total = typeof data.milliseconds === "number" ? data.milliseconds : timings.total;
    const span = labelled("time", typeof total === "number" ? total.toFixed(1) + " ms" : "?");
    span.className = "time";
    const stages = Object.entries(timings)
      .filter(([name, ms]) => name !== "total" && typeof ms === "number")
      .map(([name, ms]) => name + " " + ms.toFixed(1));
    if (stages.length) span.append(" (" + stages.join(", ") + ")");
    return span;
  }

  function showResults(data) {
    const line = [
      labelled("radius", data.radius),
      labelled("candidates", number(data.candidates)),
      labelled("documents touched", number(data.documents_touched)),
      labelled("buckets touched", number(data.buckets_touched)),
      labelled("backend", data.backend),
      timeFigure(data),
    ];
    if (data.ranking) line.push(labelled("ranked by", data.ranking));
    if (data.setting) {
      const reached = typeof data.tuned_recall === "number"
        ? ` (recall@10 ${data.tuned_recall.toFixed(3)} when tuned)` : "";
      line.push(labelled("setting", data.setting + reached));
    }
    if (data.exact) line.push(el("span", null, "exact"));
    figures.replaceChildren(...line);
    figures.hidden = false;

    const noteList = Array.isArray(data.notes) ? data.notes : [];
    notes.replaceChildren(...noteList.map((note) => el("li", null, note)));
    notes.hidden = noteList.length === 0;

    const hits = Array.isArray(data.hits) ? data.hits : [];
    hits.forEach((hit, rank) => {
      const row = el("tr");
      const idCell = el("td", "id", hit.id);
      idCell.title = String(hit.id);
      row.append(
        el("td", "num rank", rank + 1),
        el("td", "num distance", hit.distance),
        el("td", "num score", typeof hit.score === "number" ? hit.score.toFixed(4) : hit.score),
        idCell,
        snippetCell(hit.text),
        metadataCell(hit.metadata),
      );
      body.append(row);
    });
    results.hidden = hits.length === 0;
    empty.hidden = hits.length !== 0;
  }

  async function search(text, k) {
    clearResults();
    submit.disabled = true;
    submit.textContent = "Searching…";
    try {
      const response = await fetch("/search", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: text, k: k }),
      });
      const data = await getJSON(response);
      if (!response.ok) {
        showError((data && data.error) || `the service answered ${response.status}`);
      } else if (!data) {
        showError("the service's answer was not JSON");
      } else {
        showResults(data);
      }
    } catch (error) {
      showError("the service did not answer: " + error.message);
    } finally {
      submit.disabled = false;
      submit.textContent = "Search";
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const k = parseInt(kSelect.value, 10);
    const params = new URLSearchParams({ q: query.value, k: String(k) });
    history.replaceState(null, "", "?" + params.toString());
    search(query.value, k);
  });

  // A shared link (/?q=...&k=...) runs its search on load.
  const params = new URLSearchParams(location.search);
  const wanted = params.get("k");
  if (wanted && /^\d+$/.test(wanted)) {
    if (![...kSelect.options].some((option) => option.value === wanted)) {
      kSelect.append(el("option", null, wanted));
    }
    kSelect.value = wanted;
  }
  loadInfo();
  if (params.get("q")) {
    query.value = params.get("q");
    search(query.value, parseInt(kSelect.value, 10));
  }
})();
