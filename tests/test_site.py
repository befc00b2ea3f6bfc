"""The course website: built offline from the stored outputs, complete, and self-contained.

Built the README's way (Sphinx + myst-nb, nothing executed), served on 127.0.0.1 and read in
headless Chromium: every notebook has a page with its outputs, every image loads, the pages
link to each other, and no page asks anything of another host.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest
from browser import chromium
from notebook_runs import NOTEBOOKS, ROOT

README_BUILD = "python -m sphinx -b html -c site . _site/html"
SOLUTION_FOLD = "<details><summary>Show the worked solution</summary>"
"""How a worked solution starts (tools/fold_solutions.py): closed until the learner clicks."""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built with the README's command (warnings are errors) into a scratch folder."""
    site_folder = tmp_path_factory.mktemp("site") / "_site"
    out = site_folder / "html"
    command = [sys.executable, *README_BUILD.split()[1:-1], "-W", "--keep-going", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # myst-nb writes beside the output folder: with the README's path that is inside _site/,
    # which git ignores, so a learner's build leaves the course folder clean.
    assert {p.name for p in site_folder.iterdir()} <= {"html", "jupyter_execute"}
    return out


@pytest.fixture(scope="module")
def served(site):
    """The built site on an HTTP server at 127.0.0.1; yields its address."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep the test output readable
        pass


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def first_stored_text(notebook: Path) -> str:
    """The first line a code cell of ``notebook`` printed, as stored in the file."""
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        for output in cell.get("outputs", []):
            if output.get("name") == "stdout":
                return "".join(output["text"]).splitlines()[0].strip()
    raise AssertionError(f"{notebook.name} printed nothing")


def test_the_readme_gives_the_build_command():
    assert README_BUILD in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_notebook_has_a_page_with_its_stored_outputs(site):
    for notebook in NOTEBOOKS:
        page = site / "notebooks" / f"{notebook.stem}.html"
        assert page.is_file(), notebook.name
        html = page.read_text(encoding="utf-8")
        title = json.loads(notebook.read_text(encoding="utf-8"))["cells"][0]["source"][0]
        assert title.removeprefix("# ").strip().split(":")[0] in html
        printed = first_stored_text(notebook).replace("<", "&lt;").replace(">", "&gt;")
        assert printed in html, f"{notebook.name}: stored output {printed!r} not on its page"
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        solutions = markdown.count(SOLUTION_FOLD)
        assert solutions == len(re.findall(r"^### Solution \d+", markdown, re.M)), notebook.name
        folded = re.findall(
            re.escape(SOLUTION_FOLD) + r'\n<div class="highlight-python notranslate">', html
        )  # closed (no "open"), with the solution's code inside, highlighted as Python
        assert len(folded) == solutions, f"{notebook.name}: {len(folded)} solutions folded"
        for verdict in re.finditer("Correct: ", html):  # a verdict, were one stored, is folded
            opened, closed = (
                html.rfind("<details", 0, verdict.start()),
                html.rfind("</details>", 0, verdict.start()),
            )
            assert opened > closed, f"{notebook.name}: a solution's result is shown unfolded"


def test_pages_load_their_images_link_up_and_ask_nothing_of_other_hosts(served, browser):
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(served)  # the top index.html leads to the course's start page
    page.wait_for_url("**/site/index.html")
    page.get_by_role("link", name="00 · Setup", exact=False).first.click()
    page.wait_for_url("**/notebooks/00_setup.html")
    for notebook in NOTEBOOKS:
        page.goto(f"{served}/notebooks/{notebook.stem}.html")
        page.wait_for_load_state("networkidle")
        broken = page.eval_on_selector_all(
            "img", "imgs => imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
        )
        assert broken == [], f"{notebook.name}: images that do not load: {broken}"
        if notebook != NOTEBOOKS[-1]:  # the theme's "next" link leads to the next notebook
            following = NOTEBOOKS[NOTEBOOKS.index(notebook) + 1].stem
            assert page.locator(f"a.right-next[href*='{following}']").count() == 1
    hosts = {urllib.parse.urlsplit(url).hostname for url in requested}
    assert hosts == {"127.0.0.1"}, f"pages requested other hosts: {hosts - {'127.0.0.1'}}"
    page.close()


def test_long_output_lines_wrap_instead_of_scrolling(served, browser):
    """A checker's hint is one long line: on the site it wraps (site/_static/course.css), so a
    learner reads it whole, without scrolling sideways inside the output box."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    long_lines = 0
    for notebook in NOTEBOOKS:
        page.goto(f"{served}/notebooks/{notebook.stem}.html")
        boxes = page.eval_on_selector_all(
            "div.cell_output pre",
            """pres => pres.map(p => ({
                scrolls: p.scrollWidth > p.clientWidth + 1,
                longest: Math.max(...p.textContent.split("\\n").map(line => line.length)),
                start: p.textContent.slice(0, 60),
            }))""",
        )
        scrolling = [box["start"] for box in boxes if box["scrolls"]]
        assert scrolling == [], f"{notebook.name}: outputs that scroll sideways: {scrolling}"
        long_lines += sum(box["longest"] > 120 for box in boxes)
    assert long_lines > 0, "no output line longer than a page's width: the check checks nothing"
    css = page.evaluate(
        "getComputedStyle(document.querySelector('div.cell_output pre')).whiteSpace"
    )
    assert css == "pre-wrap", css
    page.close()


def test_a_solution_opens_on_a_click(served, browser):
    """A folded solution hides its code until the learner clicks its summary."""
    page = browser.new_page()
    page.goto(f"{served}/notebooks/03_start_run.html")
    summary = page.locator("summary", has_text="Show the worked solution").first
    code = page.locator("details:has(summary) div.highlight-python").first
    assert summary.is_visible() and not code.is_visible()
    summary.click()
    code.wait_for(state="visible")
    assert "check_distance_only_run" in code.inner_text()
    page.close()
