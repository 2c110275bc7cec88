"""The Label Studio labeling configuration (its XML) for each of the three image tasks.

The tag names are fixed (``image``, ``label``) so that annotations, predictions and exports
can be read and written without parsing the XML back.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from ingestion_project.labeling.spec import LabelingSpec

IMAGE_TAG = "image"
LABEL_TAG = "label"
# What each task's annotation results are, in Label Studio's result JSON.
RESULT_TYPES = {
    "multi_class": "choices",
    "multi_label": "choices",
    "object_detection": "rectanglelabels",
}


def label_config(spec: LabelingSpec) -> str:
    """The XML for ``spec``'s task: one image, its classes, and the instructions as a header."""
    options = "\n".join(f"    <{_option(spec)} value={quoteattr(c)}/>" for c in spec.classes)
    header = f"  <Header value={quoteattr(spec.instructions)}/>\n" if spec.instructions else ""
    image = f'  <Image name="{IMAGE_TAG}" value="$image"/>\n'
    if spec.task == "object_detection":
        body = (
            f'  <RectangleLabels name="{LABEL_TAG}" toName="{IMAGE_TAG}">\n'
            f"{options}\n  </RectangleLabels>\n"
        )
    else:
        choice = "multiple" if spec.task == "multi_label" else "single-radio"
        required = ' required="true"' if spec.task == "multi_class" else ""
        body = (
            f'  <Choices name="{LABEL_TAG}" toName="{IMAGE_TAG}" choice="{choice}"{required}>\n'
            f"{options}\n  </Choices>\n"
        )
    return f"<View>\n{header}{image}{body}</View>\n"


def _option(spec: LabelingSpec) -> str:
    return "Label" if spec.task == "object_detection" else "Choice"


def instructions_html(spec: LabelingSpec) -> str:
    """The instructions as Label Studio shows them before labeling starts (escaped text)."""
    return f"<p>{escape(spec.instructions)}</p>" if spec.instructions else ""
