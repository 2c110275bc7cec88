"""What a labeling project declares in a catalog's ``labeling:`` section.

An entry names a ``kind: file`` dataset of images, the task (Azure ML's three image tasks), the
classes and instructions, and the Label Studio server; the entry's name is the labeled dataset
it produces. The specs know nothing of Dagster or of Label Studio's API.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ingestion_project.catalog.spec import SecretRef, SpecModel, checked_owners
from ingestion_project.catalog.spec import parse_interval_seconds as interval_seconds

TASKS = ("multi_class", "multi_label", "object_detection")
TaskType = Literal["multi_class", "multi_label", "object_detection"]
TASK_TITLES = {
    "multi_class": "Image classification (multi-class)",
    "multi_label": "Image classification (multi-label)",
    "object_detection": "Object detection (bounding boxes)",
}


class LabelStudioConnection(SpecModel):
    """The Label Studio server; its API token is read from an environment variable when used."""

    url: str = Field(description="The server's address, e.g. http://localhost:8080.")
    token: SecretRef = Field(description="{env: VARIABLE}: the variable that holds the token.")
    timeout_seconds: float = Field(default=60, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be the http(s) address of the Label Studio server")
        return value.rstrip("/")


class ImageUrlsSpec(SpecModel):
    """How labelers' browsers reach the images.

    Azure Blob images get read-only SAS URLs that we sign, valid for ``expiry``; each sync signs
    again those that have less than half of it left. Local images are served by Label Studio
    itself (started with ``LOCAL_FILES_SERVING_ENABLED=true``) from under its
    ``LOCAL_FILES_DOCUMENT_ROOT``, which ``local_files_document_root`` repeats; the datastore's
    root must be a folder inside it (``local_files_root``: that root as Label Studio's machine
    sees it, when not the same path). ``base_url`` serves images of any store from a web server
    of yours instead: each image at ``base_url`` + its path in the datastore.
    """

    expiry: str = Field(default="24h", description="Lifetime of signed URLs: '1h', '24h'.")
    local_files_document_root: str | None = Field(
        default=None, description="Label Studio's LOCAL_FILES_DOCUMENT_ROOT, for local images."
    )
    local_files_root: str | None = Field(
        default=None, description="The datastore's root as Label Studio sees it (default: same)."
    )
    base_url: str | None = None

    @model_validator(mode="after")
    def _inside_document_root(self) -> ImageUrlsSpec:
        for value in (self.local_files_document_root, self.local_files_root):
            if value is not None and not value.startswith("/"):
                raise ValueError(f"'{value}' must be an absolute path, as Label Studio sees it")
        return self

    @field_validator("expiry")
    @classmethod
    def _expiry(cls, value: str) -> str:
        seconds = interval_seconds(value)
        if seconds < 300 or seconds > 7 * 24 * 3600:
            raise ValueError(f"'{value}' must be from 5m to 168h (7 days, Azure's SAS limit)")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL under which the images are served")
        return value

    @property
    def expiry_seconds(self) -> int:
        return interval_seconds(self.expiry)


class PrelabelSpec(SpecModel):
    """Predictions shown to labelers as a starting point, from a model or a dataset.

    ``model``: the latest predictions of a declared model with ``scoring:`` (its
    ``<model>_predictions``), one row per image; ``dataset``: any tabular dataset of predictions.
    ``image_column`` names each row's image by its path in the image datastore; ``label_column``
    holds a class (multi_class), a list of classes or 'a;b' text (multi_label), or a list of
    boxes ``{label, topX, topY, bottomX, bottomY}`` in 0..1 (object_detection, the form of our
    own tabular export); ``score_column`` (optional) its confidence. ``label_map`` turns
    predicted values into classes (a whole number predicted as 1.0 reads as '1').
    """

    model: str | None = None
    dataset: str | None = None
    image_column: str = "image"
    label_column: str | None = Field(
        default=None, description="Default: 'prediction' for a model, 'label' for a dataset."
    )
    score_column: str | None = None
    label_map: dict[str, str] = Field(
        default_factory=dict,
        description="Predicted values (as text) to classes, e.g. {'0': cat, '1': dog} for a "
        "binary model's 0/1 predictions.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> PrelabelSpec:
        if (self.model is None) == (self.dataset is None):
            raise ValueError("give exactly one of 'model' (its predictions) or 'dataset'")
        return self

    @property
    def source(self) -> str:
        return self.model or self.dataset or ""

    @property
    def label_field(self) -> str:
        return self.label_column or ("prediction" if self.model else "label")


class LabelingSpec(SpecModel):
    """A labeling project on Label Studio over an image dataset; its labels become a dataset.

    The project is created and kept in step with the image dataset's versions (new images
    become new tasks, removed ones are reported); each export registers a version of the
    labeled dataset named like the entry, in COCO and in a table.
    """

    images: str = Field(description="A 'kind: file' dataset of images (png, jpeg, ...).")
    task: TaskType
    classes: list[str] = Field(min_length=1)
    instructions: str = ""
    title: str | None = Field(default=None, description="The project's title; default: its name.")
    label_studio: LabelStudioConnection
    image_urls: ImageUrlsSpec = Field(default_factory=ImageUrlsSpec)
    prelabel: PrelabelSpec | None = None
    progress_every: str = Field(
        default="5m", description="How often the progress sensor reads the project: '5m'."
    )
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    owners: list[str] = Field(default_factory=list)

    @field_validator("classes")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for label in value:
            text = label.strip()
            if not text or text != label:
                raise ValueError(f"class {label!r} must be non-empty text without outer spaces")
            if any(char in label for char in '<>"&'):
                raise ValueError(f'class {label!r} must not contain <, >, " or &')
            if label in seen:
                raise ValueError(f"class {label!r} is listed twice")
            seen.add(label)
        return value

    @field_validator("progress_every")
    @classmethod
    def _interval(cls, value: str) -> str:
        interval_seconds(value)
        return value

    @field_validator("owners")
    @classmethod
    def _owners(cls, value: list[str]) -> list[str]:
        return checked_owners(value)

    @property
    def progress_seconds(self) -> int:
        return interval_seconds(self.progress_every)


def project_asset_name(name: str) -> str:
    """The asset that keeps the Label Studio project of labeling entry ``name`` in step."""
    return f"{name}_project"


def progress_sensor_name(name: str) -> str:
    return f"{name}_progress"
