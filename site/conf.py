"""Sphinx configuration of the course website: the notebooks with their stored outputs.

Why Sphinx + myst-nb: the site must build offline, in CI, from exactly what learners read on
GitHub. ``nb_execution_mode = "off"`` renders the stored outputs (which strict nbval has
checked) instead of running anything. Build from the course folder:

    python -m sphinx -b html -c site . _site/html
"""

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
