"""nbconvert's ``ehkit_report`` exporter: the board-safe HTML of ``ehkit report``.

Registered in pyproject's ``nbconvert.exporters`` entry points, so ``jupyter nbconvert --to
ehkit_report NOTEBOOK`` and JupyterLab's File > Save and Export Notebook As > Ehkit_report
give the same HTML as ``ehkit report``: code hidden, images embedded, HTML sanitised, and
no script at all (a plain HTML export of a report carries its code and four scripts).
"""

from __future__ import annotations

from nbconvert import HTMLExporter

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
