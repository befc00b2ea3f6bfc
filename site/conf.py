"""Sphinx configuration of the course website: the notebooks with their stored outputs.

Why Sphinx + myst-nb: the site must build offline, in CI, from exactly what learners read on
GitHub. ``nb_execution_mode = "off"`` renders the stored outputs (which strict nbval has
checked) instead of running anything. Build from the course folder:

    python -m sphinx -b html -c site . _site/html
"""

import json

from sphinx.application import Sphinx

from helpers.quizzes import TAG, site_markdown

project = "Experiment tracking with MLflow"
author = "The course's authors"
copyright = "the course's authors"

extensions = ["myst_nb"]
root_doc = "site/index"
# The source folder is the course folder, so notebooks find docs/images/ as they do on GitHub.
include_patterns = ["site/index.md", "notebooks/[0-9][0-9]_*.ipynb", "docs/*.md", "docs/images/*"]
exclude_patterns = ["_site", "**/.ipynb_checkpoints", "**/.venv", "**/venv"]

nb_execution_mode = "off"  # render the stored outputs, checked by the tests; run nothing
nb_ipywidgets_js = {}  # no widget scripts from a CDN: the site works offline
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # notebooks start at H1 and may skip levels

html_theme = "sphinx_book_theme"
html_title = project
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "home_page_in_toc": True,
}
html_last_updated_fmt = None
html_copy_source = False
html_extra_path = ["_extra"]  # index.html at the top, leading to site/index.html
html_static_path = ["_static"]
html_css_files = ["course.css"]  # long output lines (checker hints) wrap instead of scrolling


def fold_quizzes(app: Sphinx, docname: str, source: list[str]) -> None:
    """Show a notebook's quiz the way a page that runs nothing can: its cells (the questions,
    and the answer cell that would check them in JupyterLab; tools/insert_quizzes.py writes
    both) become one markdown cell, each option folded over its verdict and why."""
    if not docname.startswith("notebooks/"):
        return
    nb = json.loads(source[0])
    cells = nb["cells"]
    quiz = [i for i, cell in enumerate(cells) if TAG in cell["metadata"].get("tags", [])]
    if not quiz:
        return
    number = docname.split("/")[-1][:2]
    folded = {
        "cell_type": "markdown",
        "id": "quiz",
        "metadata": {},
        "source": site_markdown(number),
    }
    nb["cells"] = [folded if i == quiz[0] else c for i, c in enumerate(cells) if i not in quiz[1:]]
    source[0] = json.dumps(nb)


def setup(app: Sphinx) -> None:
    app.connect("source-read", fold_quizzes)
