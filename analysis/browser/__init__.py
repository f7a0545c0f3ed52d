"""The offline results browser of the report: grids of every output, side-by-side comparison with per-image
metrics, the sortable tables and the figures, as one static page (``reports/paper/index.html``)."""
from analysis.browser.build import Browser, build_groups, write_browser

__all__ = ["Browser", "build_groups", "write_browser"]
