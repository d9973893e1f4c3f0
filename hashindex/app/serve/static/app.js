// The search page: asks the service's own /info, /search and /documents/{id}, and writes every
// piece of text with textContent (never innerHTML), so a document's text can never become markup.
//
// One state drives the page: {q, k, like, target, filter, doc}. The URL's query string holds it
// (q, k, like, target_recall, filter as JSON, doc), so every search is a link; each new search
// is a history entry, and back/forward runs the entry's search again. A search is by `like` (an
// id: "more like this") when the state has one, else by the text q.
"use strict";

(function () {
  const SNIPPET_CHARS = 280;
  const RANGE_SIGNS = { gt: ">", gte: "≥", lt: "<", lte: "≤" };
  const RANGE_WORDS = { gt: "above", gte: "at least", lt: "below", lte: "at most" };
  const LOWER = ["gt", "gte"];
  const UPPER = ["lt", "lte"];
  const $ = (id) => document.getElementById(id);
  const form = $("search");
  const query = $("query");
  const kSelect = $("k");
  const target = $("target");
  const submit = $("submit");
  const filterForm = $("filter-form");
  const filterColumn = $("filter-column");
  const filterOp = $("filter-op");
  const filterValue = $("filter-value");
  const filtersBox = $("filters");
  const filterList = $("filter-list");
  const likeBar = $("like-bar");
  const errorBox = $("error");
  const statusLine = $("status");
  const figures = $("figures");
  const notes = $("notes");
  const results = $("results");
  const body = results.querySelector("tbody");
  const empty = $("empty");
  const dialog = $("document");

  let columns = []; // the metadata columns /info names: the ones a filter may use
  const columnTypes = {}; // column -> "string" | "number" | "boolean", from the values seen
  let state = blankState();
  let searches = 0; // the latest search's number: an older answer arriving late is dropped
  let documentOpener = null; // the element focused before the document dialog opened

  function blankState() {
    return { q: "", k: 10, like: null, target: "", filter: {}, doc: null };
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function button(className, text, onClick) {
    const node = el("button", className, text);
    node.type = "button";
    node.addEventListener("click", onClick);
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

  function shown(value) {
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  async function getJSON(response) {
    try {
      return await response.json();
    } catch (_) {
      return null;
    }
  }

  // ---- the URL ------------------------------------------------------------------------------

  function urlOf(s) {
    const params = new URLSearchParams();
    if (s.q) params.set("q", s.q);
    if (s.like !== null) params.set("like", s.like);
    params.set("k", String(s.k));
    if (s.target !== "") params.set("target_recall", s.target);
    if (Object.keys(s.filter).length) params.set("filter", JSON.stringify(s.filter));
    if (s.doc !== null) params.set("doc", s.doc);
    return "?" + params.toString();
  }

  // The state a URL holds, and what in it could not be read (said on the page, not dropped
  // silently).
  function stateOf(search) {
    const params = new URLSearchParams(search);
    const s = blankState();
    const problems = [];
    s.q = params.get("q") || "";
    s.like = params.get("like") || null;
    s.doc = params.get("doc") || null;
    s.target = (params.get("target_recall") || "").trim();
    const k = params.get("k");
    if (k && /^\d+$/.test(k)) s.k = parseInt(k, 10);
    else if (k) problems.push(`the link's k (${k}) is not a whole number; k is ${s.k}`);
    const filter = params.get("filter");
    if (filter) {
      let parsed;
      try {
        parsed = JSON.parse(filter);
      } catch (_) {
        parsed = undefined;
      }
      if (isObject(parsed)) s.filter = parsed;
      else {
        problems.push("the link's filter is not a JSON object of column: condition; it was "
          + "left out");
      }
    }
    return { state: s, problems };
  }

  function record(next, push) {
    const url = urlOf(next);
    if (url === location.search) return;
    if (push) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
  }

  // ---- /info --------------------------------------------------------------------------------

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
      const modelName = isObject(model) ? model.name : model;
      info.textContent = "";
      const parts = [
        ["documents", number(data.documents)],
        ["bits", data.bits],
        ["model", modelName],
        ["variant", data.variant],
      ];
      parts.forEach(([label, value]) => {
        if (value === undefined || value === null) return;
        if (info.childNodes.length) info.append("  ·  ");
        info.append(label + " ", el("b", null, value));
      });
      columns = Array.isArray(data.metadata_columns) ? data.metadata_columns.map(String) : [];
      filterColumn.replaceChildren(...columns.map((name) => el("option", null, name)));
      filterForm.hidden = columns.length === 0;
      const tuned = isObject(data.tuning) ? data.tuning.target_recall : undefined;
      if (typeof tuned === "number") {
        target.placeholder = String(tuned);
        $("target-help").textContent = "recall at 10 to aim for, above 0 and at most 1; leave "
          + `it empty for the index's default, ${tuned}`;
      }
    } catch (_) {
      info.textContent = "index information unavailable (the service did not answer)";
    }
  }

  // ---- filters ------------------------------------------------------------------------------

  function learn(metadata) {
    for (const [key, value] of Object.entries(metadata || {})) {
      if (["string", "number", "boolean"].includes(typeof value)) columnTypes[key] = typeof value;
    }
  }

  function describe(column, condition) {
    if (Array.isArray(condition)) return `${column} is one of ${condition.map(shown).join(", ")}`;
    if (isObject(condition)) {
      const bounds = Object.entries(condition)
        .map(([op, v]) => `${RANGE_SIGNS[op] || op} ${shown(v)}`);
      return `${column} ${bounds.join(" and ")}`;
    }
    return `${column} = ${shown(condition)}`;
  }

  function spoken(column, condition) {
    if (isObject(condition)) {
      const bounds = Object.entries(condition)
        .map(([op, v]) => `${RANGE_WORDS[op] || op} ${shown(v)}`);
      return `${column} ${bounds.join(" and ")}`;
    }
    return describe(column, condition).replace(" = ", " is ");
  }

  function withFilter(column, condition) {
    const filter = { ...state.filter };
    if (condition === undefined) delete filter[column];
    else filter[column] = condition;
    return { ...state, filter, doc: null };
  }

  // A metadata chip's value: a filter on it, or, when that filter is on, none.
  function chipFilters(column, value) {
    return state.filter[column] === value ? withFilter(column, undefined)
      : withFilter(column, value);
  }

  // The filter form's text as the column's type (learned from the values the page has seen:
  // /info names the columns but not their types); an unknown type goes as text, which the
  // service casts to the column's type.
  function typedValue(column, text) {
    const kind = columnTypes[column];
    if (kind === "number") {
      const value = Number(text);
      if (text === "" || !Number.isFinite(value)) {
        throw new Error(`${column} holds numbers; ${JSON.stringify(text)} is not one`);
      }
      return value;
    }
    if (kind === "boolean") {
      if (text === "true" || text === "false") return text === "true";
      throw new Error(`${column} holds true or false; ${JSON.stringify(text)} is neither`);
    }
    return text;
  }

  function addFilter(event) {
    event.preventDefault();
    const column = filterColumn.value;
    const text = filterValue.value.trim();
    let value;
    try {
      if (!column) throw new Error("this index has no metadata column to filter on");
      if (text === "") throw new Error(`give a value to compare ${column} with`);
      value = typedValue(column, text);
    } catch (error) {
      showError("filter: " + error.message);
      filterValue.focus();
      return;
    }
    const op = filterOp.value;
    let condition = value;
    if (op !== "eq") {
      const old = state.filter[column];
      condition = isObject(old) ? { ...old } : {};
      for (const same of LOWER.includes(op) ? LOWER : UPPER) delete condition[same];
      condition[op] = value;
    }
    filterValue.value = "";
    go(withFilter(column, condition));
  }

  function showFilters() {
    const entries = Object.entries(state.filter);
    filterList.replaceChildren(...entries.map(([column, condition], at) => {
      const item = el("li");
      const remove = button("filter-pill", null, () => {
        go(withFilter(column, undefined), { focus: () => focusPill(at) });
      });
      remove.append(el("span", null, describe(column, condition)), el("span", "x", "×"));
      remove.setAttribute("aria-label", `Remove the filter ${spoken(column, condition)}`);
      remove.title = "Remove this filter";
      item.append(remove);
      return item;
    }));
    $("filters-clear").hidden = entries.length < 2;
    filtersBox.hidden = entries.length === 0;
  }

  // After a filter is removed: the pill now in its place, or the one before, or the status.
  function focusPill(at) {
    const pills = filterList.querySelectorAll("button");
    const next = pills[Math.min(at, pills.length - 1)];
    (next || statusLine).focus();
  }

  // ---- the controls -------------------------------------------------------------------------

  function showControls() {
    query.value = state.q;
    const k = String(state.k);
    if (![...kSelect.options].some((option) => option.value === k)) {
      kSelect.append(el("option", null, k));
    }
    kSelect.value = k;
    target.value = state.target;
    showFilters();
    likeBar.hidden = state.like === null;
    $("like-id").textContent = state.like === null ? "" : state.like;
  }

  function targetProblem(text) {
    if (text === "") return null;
    const value = Number(text);
    if (!/^\s*(\d+\.?\d*|\.\d+)\s*$/.test(text) || !(value > 0 && value <= 1)) {
      return `recall target: ${JSON.stringify(text)} is not a number above 0 and at most 1 `
        + "(leave it empty for the index's default)";
    }
    return null;
  }

  // ---- results ------------------------------------------------------------------------------

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function clearResults() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    statusLine.textContent = "";
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
    const toggle = button("more", "more", () => {
      const expanded = toggle.getAttribute("aria-expanded") === "true";
      span.textContent = expanded ? short : full;
      toggle.textContent = expanded ? "more" : "less";
      toggle.setAttribute("aria-expanded", String(!expanded));
    });
    toggle.setAttribute("aria-expanded", "false");
    toggle.setAttribute("aria-label", "Show the whole text");
    cell.append(span, toggle);
    return cell;
  }

  // A metadata value as a chip: a button that filters by it when its column is one /info
  // names and the value is one a filter can compare (text, number, true/false).
  function chip(key, value, onPick) {
    const text = shown(value);
    const filterable = columns.includes(key)
      && ["string", "number", "boolean"].includes(typeof value);
    if (!filterable) {
      const node = el("span", "chip");
      node.title = key + ": " + text;
      node.append(el("span", "key", key + ": "), text);
      return node;
    }
    const on = state.filter[key] === value;
    const node = button("chip", null, () => onPick(chipFilters(key, value)));
    node.dataset.column = key;
    node.setAttribute("aria-pressed", String(on));
    node.setAttribute("aria-label", on ? `Remove the filter ${key} is ${text}`
      : `Filter by ${key} is ${text}`);
    node.title = (on ? "Remove the filter " : "Filter by ") + key + " = " + text;
    node.append(el("span", "key", key + ": "), text);
    return node;
  }

  // A state picked by a control inside the results (which the new answer replaces): the focus
  // goes to the status line that reads the new answer out.
  function pickFromResults(next) {
    go(next, { focus: () => statusLine.focus() });
  }

  function metadataCell(metadata) {
    const cell = el("td", "meta");
    for (const [key, value] of Object.entries(metadata || {})) {
      cell.append(chip(key, value, pickFromResults));
    }
    return cell;
  }

  function idCell(id) {
    const cell = el("td", "id");
    const link = el("a", "doc-link", id);
    link.href = urlOf({ ...state, doc: id });
    link.title = id;
    link.setAttribute("aria-label", `Open the document ${id}`);
    link.addEventListener("click", (event) => {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.altKey || event.button) return;
      event.preventDefault();
      openDocument(id);
    });
    const like = button("like", "more like this", () => moreLike(id));
    like.setAttribute("aria-label", `More documents like ${id}`);
    cell.append(link, like);
    return cell;
  }

  function moreLike(id) {
    pickFromResults({ ...state, like: id, doc: null });
  }

  // The service's time: "milliseconds", or "timings" {stage: ms} with a "total".
  function timeFigure(data) {
    const timings = isObject(data.timings) ? data.timings : {};
    const total = typeof data.milliseconds === "number" ? data.milliseconds : timings.total;
    const span = labelled("time", typeof total === "number" ? total.toFixed(1) + " ms" : "?");
    span.className = "time";
    const stages = Object.entries(timings)
      .filter(([name, ms]) => name !== "total" && typeof ms === "number")
      .map(([name, ms]) => name + " " + ms.toFixed(1));
    if (stages.length) span.append(" (" + stages.join(", ") + ")");
    return span;
  }

  function showResults(data, asked) {
    const line = [];
    const aim = labelled("recall target", asked.target !== "" ? asked.target
      : "default" + (target.placeholder ? " (" + target.placeholder + ")" : ""));
    aim.className = "aim";
    line.push(aim);
    if (data.setting) {
      const setting = labelled("setting", data.setting);
      setting.className = "setting";
      if (typeof data.tuned_recall === "number") {
        setting.append(` (recall@10 ${data.tuned_recall.toFixed(3)} when tuned)`);
      }
      line.push(setting);
    }
    line.push(
      labelled("radius", data.radius),
      labelled("candidates", number(data.candidates)),
      labelled("documents touched", number(data.documents_touched)),
      labelled("buckets touched", number(data.buckets_touched)),
      labelled("backend", data.backend),
      timeFigure(data),
    );
    if (data.ranking) line.push(labelled("ranked by", data.ranking));
    if (typeof data.filter_passed === "number") {
      line.push(labelled("passed the filter", number(data.filter_passed) + " of "
        + number(data.filter_examined)));
    }
    if (data.exact) line.push(el("span", null, "exact"));
    figures.replaceChildren(...line);
    figures.hidden = false;

    const noteList = Array.isArray(data.notes) ? data.notes : [];
    notes.replaceChildren(...noteList.map((note) => el("li", null, note)));
    notes.hidden = noteList.length === 0;

    // The hits in the service's order (by score), ranked as it sent them.
    const hits = Array.isArray(data.hits) ? data.hits : [];
    hits.forEach((hit) => learn(hit.metadata));
    hits.forEach((hit, rank) => {
      const row = el("tr");
      row.append(
        el("td", "num rank", rank + 1),
        el("td", "num distance", hit.distance),
        el("td", "num score", typeof hit.score === "number" ? hit.score.toFixed(4) : hit.score),
        idCell(String(hit.id)),
        snippetCell(hit.text),
        metadataCell(hit.metadata),
      );
      body.append(row);
    });
    results.hidden = hits.length === 0;
    empty.hidden = hits.length !== 0;

    const what = asked.like !== null ? `like ${asked.like}` : `for “${asked.q}”`;
    const filtered = Object.entries(asked.filter).map(([c, v]) => spoken(c, v));
    statusLine.textContent = `${hits.length} ${hits.length === 1 ? "hit" : "hits"} ${what}`
      + (filtered.length ? `, filtered by ${filtered.join(" and ")}` : "");
  }

  function bodyOf(s) {
    const out = s.like !== null ? { like: s.like } : { text: s.q };
    out.k = s.k;
    if (s.target !== "") out.target_recall = Number(s.target);
    if (Object.keys(s.filter).length) out.filter = s.filter;
    return out;
  }

  const infoLoaded = loadInfo();

  async function run(asked, force) {
    const mine = ++searches;
    clearResults();
    if (asked.like === null && asked.q === "" && !force) return; // nothing to search for yet
    const problem = targetProblem(asked.target);
    if (problem) {
      showError(problem);
      return;
    }
    submit.disabled = true;
    submit.textContent = "Searching…";
    results.setAttribute("aria-busy", "true");
    try {
      await infoLoaded; // the metadata columns, before chips are drawn
      const response = await fetch("/search", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(bodyOf(asked)),
      });
      const data = await getJSON(response);
      if (mine !== searches) return;
      if (!response.ok) {
        showError((data && data.error) || `the service answered ${response.status}`);
      } else if (!data) {
        showError("the service's answer was not JSON");
      } else {
        showResults(data, asked);
      }
    } catch (error) {
      if (mine === searches) showError("the service did not answer: " + error.message);
    } finally {
      if (mine === searches) {
        submit.disabled = false;
        submit.textContent = "Search";
        results.removeAttribute("aria-busy");
      }
    }
  }

  // A new state: shown, written to the URL (a new history entry unless push is false), and
  // searched; `focus` runs once the answer is drawn (the element that was clicked is gone).
  function go(next, { push = true, focus = null, force = false } = {}) {
    if (dialog.open) closeDocument();
    state = next;
    record(state, push);
    showControls();
    return run(state, force).then(() => {
      if (focus && state === next) focus();
    });
  }

  // ---- one document (GET /documents/{id}) ---------------------------------------------------

  async function openDocument(id) {
    documentOpener = document.activeElement;
    state = { ...state, doc: id };
    record(state, false);
    $("document-id").textContent = id;
    $("document-error").hidden = true;
    $("document-meta").replaceChildren();
    $("document-text").textContent = "loading…";
    $("document-copied").textContent = "";
    $("document-link").href = urlOf(state);
    if (!dialog.open) dialog.showModal();
    try {
      const response = await fetch("/documents/" + encodeURIComponent(id));
      const data = await getJSON(response);
      if (state.doc !== id) return;
      if (!response.ok || !data) {
        $("document-text").textContent = "";
        $("document-error").textContent = (data && data.error)
          || `the service answered ${response.status}`;
        $("document-error").hidden = false;
        return;
      }
      learn(data.metadata);
      $("document-text").textContent = data.text == null ? "" : String(data.text);
      $("document-meta").replaceChildren(...Object.entries(data.metadata || {}).map(
        ([key, value]) => chip(key, value, pickFromResults)));
    } catch (error) {
      if (state.doc !== id) return;
      $("document-text").textContent = "";
      $("document-error").textContent = "the service did not answer: " + error.message;
      $("document-error").hidden = false;
    }
  }

  function closeDocument() {
    if (dialog.open) dialog.close(); // the close event does the rest
  }

  dialog.addEventListener("close", () => {
    if (state.doc !== null) {
      state = { ...state, doc: null };
      record(state, false);
    }
    if (documentOpener && documentOpener.isConnected) documentOpener.focus();
    documentOpener = null;
  });
  $("document-close").addEventListener("click", closeDocument);
  $("document-like").addEventListener("click", () => {
    const id = state.doc;
    if (id !== null) moreLike(id);
  });
  $("document-copy").addEventListener("click", () => {
    const copied = $("document-copied");
    const link = $("document-link").href;
    const done = () => { copied.textContent = "link copied"; };
    const failed = () => { copied.textContent = "copying was refused; the link is " + link; };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(link).then(done, failed);
    } else {
      failed();
    }
  });

  // ---- events -------------------------------------------------------------------------------

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (target.validity && target.validity.badInput) {
      clearResults();
      showError("recall target: not a number (give one above 0 and at most 1, or leave it empty)");
      return;
    }
    const next = { ...state, q: query.value, k: parseInt(kSelect.value, 10),
      target: target.value.trim(), doc: null };
    // While "more like this" shows, Search with the same text re-runs it (new k, target);
    // new text searches for the text.
    if (next.like !== null && next.q !== state.q) next.like = null;
    go(next, { force: true }); // an empty query too: the service says what is wrong
  });

  filterForm.addEventListener("submit", addFilter);
  $("filters-clear").addEventListener("click", () => {
    go({ ...state, filter: {}, doc: null }, { focus: () => statusLine.focus() });
  });
  $("like-clear").addEventListener("click", () => {
    go({ ...state, like: null, doc: null }, { focus: () => query.focus() });
  });

  // The state the address holds: shown and searched (on load, and on back/forward).
  function fromURL() {
    const { state: next, problems } = stateOf(location.search);
    state = next;
    showControls();
    const searched = run(state, false);
    if (problems.length) {
      searched.then(() => showError([errorBox.hidden ? "" : errorBox.textContent, ...problems]
        .filter(Boolean).join("; ")));
    }
    if (state.doc !== null) openDocument(state.doc);
    else closeDocument();
  }

  window.addEventListener("popstate", fromURL);

  // A shared link (/?q=...&k=...&filter=...) runs its search on load.
  fromURL();
})();
