"""nbconvert's ``ehkit_report`` exporter: the board-safe HTML of ``ehkit report``.

Registered in pyproject's ``nbconvert.exporters`` entry points, so ``jupyter nbconvert --to
ehkit_report NOTEBOOK`` and JupyterLab's File > Save and Export Notebook As > Ehkit_report
give the same HTML as ``ehkit report``: code hidden, images embedded, HTML sanitised, and
no script at all (a plain HTML export of a report carries its code and four scripts).
"""

from __future__ import annotations

from nbconvert import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

from .presentation import FIGURES_MIME
from .reports import REPORT_TEMPLATES, clean_html


class ReportExporter(HTMLExporter):
    export_from_notebook = "Board report (ehkit)"

    def __init__(self, **kw):
        settings = dict(
            # nbconvert's own clean_html allows no headings or paragraphs; ours allows
            # structure and still nothing that runs.
            filters={"clean_html": clean_html},
            template_name="ehkit_report",
            extra_template_basedirs=[str(REPORT_TEMPLATES)],
            exclude_input=True,
            exclude_input_prompt=True,
            exclude_output_prompt=True,
            sanitize_html=True,
            embed_images=True,
            # the notebook checked against its schema once, after the last preprocessor, not
            # after each of the twelve: 8 ms of a quarterly report's export of 100 ms
            optimistic_validation=True,
        )
        super().__init__(**{**settings, **kw})

    def from_notebook_node(self, nb, resources=None, **kw):
        """nbconvert's HTML export without its last step, which parses the whole page again
        (BeautifulSoup, in Python) to give an image without alternative text a placeholder
        and every output a tab stop: the template writes both (each chart's alternative
        text; a tab stop on an HTML output, the only kind that scrolls), and the parse was
        50-80 ms of a quarterly report's export of 160-190 ms (bench/RESULTS.md). The
        filters are registered as ``HTMLExporter.from_notebook_node`` registers them."""
        info = nb.metadata.get("language_info", {})
        lexer = info.get("pygments_lexer", info.get("name"))
        resources = self._init_resources(resources)
        self.register_filter("highlight_code", self.filters.get(
            "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
        shown = WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self,
                                      resources=resources)
        # a report's figures are data for its CSV, shown nowhere: known here, so that
        # nbconvert does not warn a person that it cannot show them
        shown.display_data_priority = [*shown.display_data_priority, FIGURES_MIME]
        self.register_filter("filter_data_type", shown)
        return TemplateExporter.from_notebook_node(self, nb, resources, **kw)
