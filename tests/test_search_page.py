"""The search page at / in a real headless Chromium, against a real `hashindex serve` over a
small index: it shows the index's summary, runs a search and lists the hits, shows the
service's error for an empty query, escapes document text, and logs no console error.

The browser is Debian's chromium (`make setup` installs it); playwright's own browser download
is not available on our machines. Set HASHINDEX_SCREENSHOT=path.png to save a full-page
screenshot of a search (docs/search_page.png is made that way)."""

from __future__ import annotations

import json
import os
import shutil

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


def records() -> list[dict]:
    """Some of every module, all of the compression ones, the longest few, and one text of
    markup that must show as text."""
    every = bundled_sample_records()
    chosen = [r for n, r in enumerate(every) if n % 30 == 0 or r["module"] in COMPRESSION]
    chosen += sorted(every, key=lambda r: len(r["text"]))[-3:]
    unique = {r["id"]: r for r in chosen}
    return [*unique.values(), HOSTILE]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("page")
    docs = folder / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": r["id"], "text": r["text"], "module": r["module"],
                                        "chars": len(r["text"])}) + "\n" for r in records()))
    build_index(BuildConfig(input=str(docs), out=str(folder / "idx"), bits=32,
                            show_progress=False), train_config=FAST_TRAIN)
    with serve_index(folder / "idx", folder / "serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed, and the search-page test drives it: "
                    "run `make setup` (it installs chromium; playwright's own browser "
                    "download is not available here)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=["--no-sandbox"], timeout=TIMEOUT_MS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, service):
    """A fresh page on the search page, with its console errors and uncaught exceptions."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    opened.set_default_navigation_timeout(TIMEOUT_MS)
    opened.problems = []
    opened.on("console", lambda message: message.type == "error"
              and opened.problems.append(f"console: {message.text}"))
    opened.on("pageerror", lambda error: opened.problems.append(f"page error: {error}"))
    opened.goto(service + "/")
    yield opened
    context.close()


def search(page, text: str, k: str = "10", press_enter: bool = False):
    page.fill("#query", text)
    page.select_option("#k", k)
    if press_enter:
        page.press("#query", "Enter")
    else:
        page.click("#submit")


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
    assert first.nth(3).inner_text() == target["id"]
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

    if os.environ.get("HASHINDEX_SCREENSHOT"):
        search(page, SCREENSHOT_QUERY, k="10")
        page.locator("#results tbody tr").nth(9).wait_for()
        page.wait_for_function("!document.getElementById('submit').disabled")
        page.screenshot(path=os.environ["HASHINDEX_SCREENSHOT"], full_page=True)


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
    assert row.locator("td.id").inner_text() == HOSTILE["id"]
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
