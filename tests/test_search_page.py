"""The search page at / in a real headless Chromium, against a real `hashindex serve` over a
small index: it shows the index's summary, runs a search and lists the hits in the service's
order, shows the service's error for an empty query, escapes document text, and logs no console
error. It uses what the API has (#31): filters on /info's metadata columns (a metadata chip
filters by its value; the active filters show and come off), "more like this" (`like`), the
recall target (`target_recall`, with the setting that ran and the service's notes), ids that
open their document (GET /documents/{id}), deep links holding all of it with back/forward, and
the keyboard alone.

The browser is Debian's chromium (`make setup` installs it); playwright's own browser download
is not available on our machines. Set HASHINDEX_SCREENSHOT=path.png (desktop) and/or
HASHINDEX_SCREENSHOT_NARROW=path.png (a phone's width) to save full-page screenshots of a
filtered search: docs/search_page.png and docs/search_page_narrow.png are made that way."""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from helpers import FAST_TRAIN, serve_index

from indexer.build import BuildConfig, build_index
from indexer.samples import bundled_sample_records

SCREENSHOT_QUERY = "read a compressed archive"
COMPRESSION = {"gzip", "zipfile", "tarfile", "bz2", "lzma", "zlib"}
HOSTILE = {"id": "hostile<i>", "module": "<b>tests</b>",
           "text": "<b>not bold</b> <img src=x onerror=\"window.__injected = 1\"> "
                   "<script>window.__injected = 1</script> markup shown as text"}
TIMEOUT_MS = 20_000
DESKTOP = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}  # a phone


def records() -> list[dict]:
    """Some of every module, all of the compression ones, the longest few, and one text of
    markup that must show as text."""
    every = bundled_sample_records()
    chosen = [r for n, r in enumerate(every) if n % 30 == 0 or r["module"] in COMPRESSION]
    chosen += sorted(every, key=lambda r: len(r["text"]))[-3:]
    unique = {r["id"]: r for r in chosen}
    return [*unique.values(), HOSTILE]


def metadata(record: dict) -> dict:
    """Three metadata columns of three types: text, integer and boolean."""
    return {"module": record["module"], "chars": len(record["text"]),
            "compression": record["module"] in COMPRESSION}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("page")
    docs = folder / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": r["id"], "text": r["text"], **metadata(r)}) + "\n"
                            for r in records()))
    build_index(BuildConfig(input=str(docs), out=str(folder / "idx"), bits=32,
                            show_progress=False), train_config=FAST_TRAIN)
    with serve_index(folder / "idx", folder / "serve.log") as url:
        yield url


@pytest.fixture
def open_page(browser, service):
    """open_page(path, viewport): a fresh page at that address, with its console errors and
    uncaught exceptions in .problems; every page opened is closed after the test."""
    contexts = []

    def opened_at(path: str = "/", viewport: dict = DESKTOP):
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        opened = context.new_page()
        opened.set_default_timeout(TIMEOUT_MS)
        opened.set_default_navigation_timeout(TIMEOUT_MS)
        opened.problems = []
        opened.on("console", lambda message: message.type == "error"
                  and opened.problems.append(f"console: {message.text}"))
        opened.on("pageerror", lambda error: opened.problems.append(f"page error: {error}"))
        opened.goto(service + path)
        return opened

    yield opened_at
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page):
    """A fresh page on the search page."""
    return open_page()


def search(page, text: str, k: str = "10", press_enter: bool = False):
    page.fill("#query", text)
    page.select_option("#k", k)
    if press_enter:
        page.press("#query", "Enter")
    else:
        page.click("#submit")


def is_search(response) -> bool:
    return urlsplit(response.url).path == "/search" and response.request.method == "POST"


def searching(page, action) -> tuple[dict, dict]:
    """Do `action`; the body of the /search it caused and the service's answer, once the page
    has drawn it."""
    with page.expect_response(is_search) as answer:
        action()
    page.wait_for_function("!document.getElementById('results').hasAttribute('aria-busy')")
    return answer.value.request.post_data_json, answer.value.json()


def shown_hits(page) -> list[dict]:
    """Each row on the page: its id and its metadata as the chips show it."""
    return page.evaluate("""() => [...document.querySelectorAll('#results tbody tr')].map(row => ({
        id: row.querySelector('td.id .doc-link').textContent,
        metadata: Object.fromEntries([...row.querySelectorAll('td.meta .chip')].map(chip => {
            const key = chip.querySelector('.key').textContent;
            return [key.replace(/: $/, ''), chip.textContent.slice(key.length)];
        })),
    }))""")


def url_state(page) -> dict:
    return {name: values[0] for name, values in parse_qs(urlsplit(page.url).query).items()}


def pills(page) -> list[str]:
    return [text.replace("×", "").strip()
            for text in page.locator("#filter-list .filter-pill").all_inner_texts()]


def test_the_page_shows_the_index_summary(page):
    info = page.locator("#info")
    info.filter(has_text="documents").wait_for()
    summary = info.inner_text()
    assert f"documents {len(records())}" in summary and "bits 32" in summary, summary
    assert "all-MiniLM-L6-v2" in summary, summary
    assert page.title() == "hashindex search"
    assert page.problems == []


def test_a_search_lists_hits_with_ids_distances_and_figures(page):
    target = next(r for r in records() if r["module"] == "gzip")
    search(page, target["text"], k="5", press_enter=True)
    rows = page.locator("#results tbody tr")
    rows.first.wait_for()
    assert rows.count() == 5
    first = rows.first.locator("td")
    assert first.nth(0).inner_text() == "1"
    assert first.nth(1).inner_text() == "0"  # its own text: distance 0
    assert first.nth(3).locator(".doc-link").inner_text() == target["id"]
    assert f"module: {target['module']}" in first.nth(5).inner_text()
    scores = [float(rows.nth(i).locator("td.score").inner_text()) for i in range(5)]
    assert scores == sorted(scores, reverse=True)  # hits in the order of the score shown
    figures = page.locator("#figures").inner_text()
    for label in ("radius", "candidates", "documents touched", "buckets touched", "backend",
                  "ranked by", "cosine", "ms"):
        assert label in figures, figures
    time_shown = page.locator("#figures .time b").inner_text()  # "12.3 ms"
    assert time_shown.endswith(" ms") and float(time_shown.split()[0]) > 0, time_shown
    assert page.locator("#error").is_hidden()
    assert "q=" in page.url and "k=5" in page.url
    assert page.problems == []


def test_an_empty_query_shows_the_services_error(page):
    search(page, "   ")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "query text is empty" in error.inner_text()
    assert page.locator("#results").is_hidden()
    # Chromium logs the 400 itself as a failed resource; nothing else may be logged.
    unexpected = [p for p in page.problems if "status of 400" not in p]
    assert unexpected == []
    search(page, "compressed file")  # the page recovers: the error goes, hits come
    page.locator("#results tbody tr").first.wait_for()
    assert error.is_hidden()


def test_document_text_is_shown_as_text_not_markup(page):
    search(page, HOSTILE["text"], k="5")
    row = page.locator("#results tbody tr").first
    row.wait_for()
    assert row.locator("td.id .doc-link").inner_text() == HOSTILE["id"]
    assert row.locator("td.text").inner_text() == HOSTILE["text"]
    assert row.locator("td.text b, td.text img, td.text script").count() == 0
    assert "module: <b>tests</b>" in row.locator("td.meta").inner_text()
    assert page.evaluate("window.__injected") is None
    assert page.problems == []


def test_a_long_text_is_cut_and_expands(page):
    longest = max(records(), key=lambda r: len(r["text"]))
    search(page, longest["text"], k="5")
    cell = page.locator("#results tbody tr").first.locator("td.text")
    cell.wait_for()
    shown = cell.locator("span").inner_text()
    assert shown.endswith("…") and len(shown) < len(longest["text"])
    cell.locator("button.more").click()
    assert cell.locator("span").inner_text() == longest["text"]
    assert page.problems == []


def test_a_shared_link_runs_its_search(page, service):
    page.goto(service + "/?q=compressed%20file&k=20")
    page.locator("#results tbody tr").first.wait_for()
    assert page.input_value("#query") == "compressed file"
    assert page.input_value("#k") == "20"
    assert page.problems == []


def test_hits_are_shown_in_the_services_order(page):
    body, answer = searching(page, lambda: search(page, SCREENSHOT_QUERY, k="20"))
    assert body == {"text": SCREENSHOT_QUERY, "k": 20}
    assert [hit["id"] for hit in shown_hits(page)] == [hit["id"] for hit in answer["hits"]]
    ranks = page.locator("#results tbody td.rank").all_inner_texts()
    assert ranks == [str(n) for n in range(1, len(answer["hits"]) + 1)]
    assert page.locator("#status").inner_text().startswith(f"{len(answer['hits'])} hits for")
    assert page.problems == []


def test_a_metadata_chip_filters_the_search_by_its_value(page):
    searching(page, lambda: search(page, SCREENSHOT_QUERY, k="20"))
    chip = page.locator("#results tbody tr").first.locator('button.chip[data-column="module"]')
    module = chip.inner_text().removeprefix("module: ")
    assert chip.get_attribute("aria-pressed") == "false"
    body, answer = searching(page, chip.click)
    assert body == {"text": SCREENSHOT_QUERY, "k": 20, "filter": {"module": module}}
    hits = shown_hits(page)
    assert hits and [hit["id"] for hit in hits] == [hit["id"] for hit in answer["hits"]]
    assert all(hit["metadata"]["module"] == module for hit in hits), hits
    assert pills(page) == [f"module = {module}"]
    assert json.loads(url_state(page)["filter"]) == {"module": module}
    assert f"filtered by module is {module}" in page.locator("#status").inner_text()
    on = page.locator('#results button.chip[data-column="module"]').first
    assert on.get_attribute("aria-pressed") == "true"

    # a second chip, a boolean: its JSON type goes to the service (true, not "true")
    flag = page.locator("#results tbody tr").first.locator(
        'button.chip[data-column="compression"]')
    value = flag.inner_text().removeprefix("compression: ")
    body, _ = searching(page, flag.click)
    assert body["filter"] == {"module": module, "compression": json.loads(value)}
    assert all(hit["metadata"] == {**hit["metadata"], "module": module, "compression": value}
               for hit in shown_hits(page))
    assert pills(page) == [f"module = {module}", f"compression = {value}"]

    # each active filter comes off with its pill
    body, answer = searching(page, page.locator("#filter-list .filter-pill").first.click)
    assert body["filter"] == {"compression": json.loads(value)}
    assert pills(page) == [f"compression = {value}"]
    body, answer = searching(page, page.locator("#filter-list .filter-pill").first.click)
    assert "filter" not in body and "filter" not in url_state(page)
    assert page.locator("#filters").is_hidden()
    assert page.problems == []


def test_the_filter_form_offers_the_columns_info_names(page, service):
    columns = page.request.get(service + "/info").json()["metadata_columns"]
    assert columns == ["module", "chars", "compression"]
    page.locator("#filter-form").wait_for(state="visible")
    options = page.locator("#filter-column option").all_inner_texts()
    assert options == columns
    searching(page, lambda: search(page, SCREENSHOT_QUERY, k="50"))

    def add(column, op, value):
        page.select_option("#filter-column", column)
        page.select_option("#filter-op", op)
        page.fill("#filter-value", value)
        return searching(page, lambda: page.click("#filter-add"))

    body, answer = add("chars", "gte", "60")
    assert body["filter"] == {"chars": {"gte": 60}}  # a number: the column holds numbers
    body, answer = add("chars", "lt", "120")
    assert body["filter"] == {"chars": {"gte": 60, "lt": 120}}
    assert pills(page) == ["chars ≥ 60 and < 120"]
    chars = [int(hit["metadata"]["chars"]) for hit in shown_hits(page)]
    assert chars and all(60 <= n < 120 for n in chars), chars
    body, _ = add("module", "eq", "gzip")
    assert body["filter"] == {"chars": {"gte": 60, "lt": 120}, "module": "gzip"}
    assert all(hit["metadata"]["module"] == "gzip" for hit in shown_hits(page))
    searching(page, lambda: page.click("#filters-clear"))
    assert page.locator("#filters").is_hidden()

    # a value the column cannot hold is said on the page, and nothing is asked
    page.select_option("#filter-column", "chars")
    page.fill("#filter-value", "many")
    page.click("#filter-add")
    assert "chars holds numbers" in page.locator("#error").inner_text()
    assert page.problems == []


def test_more_like_this_searches_by_like_and_leaves_the_hit_out(page):
    searching(page, lambda: search(page, SCREENSHOT_QUERY, k="10"))
    row = page.locator("#results tbody tr").nth(1)
    chosen = row.locator(".doc-link").inner_text()
    body, answer = searching(page, row.locator("button.like").click)
    assert body == {"like": chosen, "k": 10}
    ids = [hit["id"] for hit in shown_hits(page)]
    assert ids and chosen not in ids
    assert ids == [hit["id"] for hit in answer["hits"]]
    assert page.locator("#like-id").inner_text() == chosen
    assert url_state(page)["like"] == chosen
    assert page.locator("#status").inner_text().endswith(f"like {chosen}")

    # a filter applies to "more like this" too; then back to the text
    chip = page.locator('#results button.chip[data-column="module"]').first
    module = chip.inner_text().removeprefix("module: ")
    body, _ = searching(page, chip.click)
    assert body == {"like": chosen, "k": 10, "filter": {"module": module}}
    body, _ = searching(page, lambda: page.click("#like-clear"))
    assert body == {"text": SCREENSHOT_QUERY, "k": 10, "filter": {"module": module}}
    assert page.locator("#like-bar").is_hidden()
    assert page.problems == []


def test_the_recall_target_is_sent_and_what_ran_is_shown(page):
    page.fill("#target", "0.8")
    body, answer = searching(page, lambda: search(page, SCREENSHOT_QUERY))
    assert body == {"text": SCREENSHOT_QUERY, "k": 10, "target_recall": 0.8}
    assert url_state(page)["target_recall"] == "0.8"
    assert page.locator("#figures .aim b").inner_text() == "0.8"
    assert page.locator("#figures .setting b").inner_text() == answer["setting"]
    tuned = f"recall@10 {answer['tuned_recall']:.3f}"
    assert tuned in page.locator("#figures .setting").inner_text()

    page.fill("#target", "1")  # the service's notes are shown
    body, answer = searching(page, lambda: page.click("#submit"))
    assert body["target_recall"] == 1
    assert page.locator("#notes li").all_inner_texts() == answer["notes"]
    assert page.locator("#notes").is_visible() == bool(answer["notes"])

    page.fill("#target", "1.5")  # refused on the page, with no request
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    page.click("#submit")
    assert "recall target" in page.locator("#error").inner_text()
    assert not any("/search" in url for url in asked)
    assert page.problems == []


def test_a_deep_link_reproduces_a_search_with_filter_and_target(page, open_page, service):
    state = {"q": SCREENSHOT_QUERY, "k": "5", "target_recall": "0.8",
             "filter": json.dumps({"compression": True, "chars": {"lt": 200}})}
    body, answer = searching(page, lambda: page.goto(service + "/?" + urlencode(state)))
    assert body == {"text": SCREENSHOT_QUERY, "k": 5, "target_recall": 0.8,
                    "filter": {"compression": True, "chars": {"lt": 200}}}
    assert page.input_value("#query") == SCREENSHOT_QUERY
    assert page.input_value("#k") == "5" and page.input_value("#target") == "0.8"
    assert pills(page) == ["compression = true", "chars < 200"]
    hits = shown_hits(page)
    assert [hit["id"] for hit in hits] == [hit["id"] for hit in answer["hits"]]
    assert hits and all(hit["metadata"]["compression"] == "true"
                        and int(hit["metadata"]["chars"]) < 200 for hit in hits), hits
    assert page.locator("#figures .setting b").inner_text() == answer["setting"]

    # "more like this" with a filter, by link
    liked = hits[0]["id"]
    state = {"like": liked, "k": "5", "filter": json.dumps({"module": "gzip"})}
    body, answer = searching(page, lambda: page.goto(service + "/?" + urlencode(state)))
    assert body == {"like": liked, "k": 5, "filter": {"module": "gzip"}}
    assert liked not in [hit["id"] for hit in shown_hits(page)]
    assert page.problems == []

    # a link whose filter is not JSON says so and searches without it
    broken = open_page("/?q=compressed&filter=%7Bmodule")
    broken.locator("#error").filter(has_text="not a JSON object").wait_for()
    assert broken.problems == []


def test_back_and_forward_run_each_search_again(page):
    first, _ = searching(page, lambda: search(page, "compressed file"))
    second, _ = searching(page, lambda: search(page, SCREENSHOT_QUERY))
    chip = page.locator('#results button.chip[data-column="module"]').first
    third, _ = searching(page, chip.click)
    assert "filter" in third

    body, answer = searching(page, page.go_back)
    assert body == second and page.input_value("#query") == SCREENSHOT_QUERY
    assert page.locator("#filters").is_hidden()
    assert [hit["id"] for hit in shown_hits(page)] == [hit["id"] for hit in answer["hits"]]
    body, _ = searching(page, page.go_back)
    assert body == first and page.input_value("#query") == "compressed file"
    body, _ = searching(page, page.go_forward)
    assert body == second
    body, _ = searching(page, page.go_forward)
    assert body == third and len(pills(page)) == 1
    assert page.problems == []


def test_an_id_opens_its_document(page, service):
    searching(page, lambda: search(page, HOSTILE["text"], k="5"))
    link = page.locator("#results tbody tr").first.locator(".doc-link")
    assert link.inner_text() == HOSTILE["id"]
    with page.expect_response(lambda r: "/documents/" in r.url) as fetched:
        link.click()
    assert fetched.value.ok and fetched.value.json()["id"] == HOSTILE["id"]
    dialog = page.locator("#document")
    dialog.wait_for(state="visible")
    text = page.locator("#document-text")
    text.filter(has_text="markup shown as text").wait_for()
    assert text.inner_text() == HOSTILE["text"]
    assert page.locator("#document-id").inner_text() == HOSTILE["id"]
    assert dialog.locator("b, img, script").count() == 0
    assert page.evaluate("window.__injected") is None
    assert url_state(page)["doc"] == HOSTILE["id"]
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    page.wait_for_function("!new URLSearchParams(location.search).has('doc')")

    # by link: the document opens over its search
    gzip_open = next(r for r in records() if r["id"] == "gzip.open")
    body, _ = searching(page, lambda: page.goto(
        service + "/?" + urlencode({"q": "gzip", "doc": "gzip.open"})))
    assert body == {"text": "gzip", "k": 10}
    page.locator("#document-text").filter(has_text=gzip_open["text"]).wait_for()
    body, _ = searching(page, lambda: page.click("#document-like"))
    assert body == {"like": "gzip.open", "k": 10}
    assert dialog.is_hidden()
    assert page.problems == []


def accessible_names(page) -> list[dict]:
    """Each visible control with the name a screen reader gives it (its label, aria-label or
    text)."""
    return page.evaluate("""() => [...document.querySelectorAll(
            'button, input, select, a[href], [tabindex]:not([tabindex="-1"])')]
        .filter(node => node.offsetParent !== null)
        .map(node => ({
            control: node.outerHTML.slice(0, 80),
            name: (node.getAttribute('aria-label')
                   || [...(node.labels || [])].map(l => l.textContent).join(' ')
                   || node.textContent || '').trim(),
        }))""")


def test_the_keyboard_alone_can_filter_and_open_documents(page):
    page.keyboard.type(SCREENSHOT_QUERY)  # the query box has the focus on load
    searching(page, lambda: page.keyboard.press("Enter"))
    assert not [c for c in accessible_names(page) if not c["name"]]

    def tab_to(selector: str, most: int = 60) -> None:
        for _ in range(most):
            page.keyboard.press("Tab")
            if page.evaluate(f"document.activeElement.matches({json.dumps(selector)})"):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to('#results button.chip[data-column="module"]')
    focused = page.evaluate("""() => {
        const style = getComputedStyle(document.activeElement);
        return {text: document.activeElement.textContent, outline: style.outlineStyle,
                width: style.outlineWidth};
    }""")
    assert focused["outline"] != "none" and focused["width"] != "0px", focused  # focus shows
    module = focused["text"].removeprefix("module: ")
    body, _ = searching(page, lambda: page.keyboard.press("Enter"))
    assert body["filter"] == {"module": module}
    assert all(hit["metadata"]["module"] == module for hit in shown_hits(page))

    tab_to("#results .doc-link")  # an id opens its document; Escape closes it
    opened = page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")
    page.locator("#document").wait_for(state="visible")
    assert page.locator("#document-id").inner_text() == opened
    page.keyboard.press("Escape")
    page.locator("#document").wait_for(state="hidden")
    assert page.evaluate("document.activeElement.textContent") == opened

    tab_to("#results button.like")  # "more like this" from the keyboard
    body, _ = searching(page, lambda: page.keyboard.press("Enter"))
    assert "like" in body

    page.focus("#query")  # back up the page: the filter's pill takes it off
    tab_to("#filter-list .filter-pill")
    body, _ = searching(page, lambda: page.keyboard.press("Enter"))
    assert "filter" not in body
    assert page.problems == []


@pytest.mark.parametrize("viewport", [DESKTOP, NARROW], ids=["desktop", "narrow"])
def test_a_filtered_search_fits_the_screen(open_page, viewport):
    """A search with an active filter at desktop and phone widths: nothing wider than the
    screen. Saved as the screenshots in docs/ when asked for."""
    page = open_page("/", viewport)
    searching(page, lambda: search(page, SCREENSHOT_QUERY, k="10"))
    chip = page.locator('#results button.chip[data-column="compression"]', has_text="true")
    searching(page, chip.first.click)
    assert pills(page) == ["compression = true"]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    page.evaluate("document.activeElement.blur()")
    variable = "HASHINDEX_SCREENSHOT" if viewport is DESKTOP else "HASHINDEX_SCREENSHOT_NARROW"
    if os.environ.get(variable):
        page.screenshot(path=os.environ[variable], full_page=True)
    assert page.problems == []
