"""What `dg scaffold defs ingestion_project.components.Catalog <folder>` writes.

A small catalog that loads as it is (one CSV dataset in the implicit local datastore, watched
for new files) with commented examples of the other kinds, so a team starts from something that
runs and edits it into its own.
"""

from __future__ import annotations

import re
import string

import dagster as dg
from pydantic import BaseModel, Field

from ingestion_project.catalog.spec import CATALOG_NAME

CATALOG_TEMPLATE = string.Template(
    """\
# A catalog of ingestion_project: datastores, datasets, models and monitors.
# Every catalog folder of this project shares one namespace: a datastore declared here serves
# datasets declared in any other catalog, and names are unique across the project.
# Reference: the "Declaring a catalog" section of ingestion_project's README.
type: ingestion_project.components.Catalog
attributes:
  # workspace_default (kind: local, files under $$INGESTION_HOME/datastores/workspace_default)
  # is always there; declare the others here. Secrets are written {env: NAME}: the variable is
  # read at run time and its value never appears in this file.
  # datastores:
  #   warehouse:
  #     kind: postgresql
  #     host: db.internal
  #     database: sales
  #     user: reader
  #     password: {env: WAREHOUSE_PASSWORD}
  #   raw_blob:
  #     kind: azure_blob
  #     account_url: https://myaccount.blob.core.windows.net
  #     container: raw
  #     credential: {sas_token: {env: RAW_SAS}}

  datasets:
    ${dataset}:
      description: CSV files that land in ${folder}/ of the local datastore.
      datastore: workspace_default
      path: ${folder}/*.csv
      # Every materialization registers a new numbered version when the files changed.
      trigger: {data_change: {every: 30s}}
      # checks: [{not_null: [id]}, {between: {amount: [0, 10000]}}]
    # customers:
    #   datastore: warehouse
    #   query: "select * from customers where country = :country"
    #   params: {country: DE}
    #   trigger: {cron: "0 2 * * *", timezone: UTC}

  # models:
  #   demand:
  #     train_on: ${dataset}
  #     target: amount
  #     features: [hour, weekday, temperature]
  #     estimator: {kind: random_forest, params: {n_estimators: 60}}
"""
)


class CatalogScaffoldParams(BaseModel):
    """Options of `dg scaffold defs ingestion_project.components.Catalog <folder>`."""

    dataset: str | None = Field(
        default=None,
        description="Name of the example dataset (default: the folder's name, then '_files').",
    )


class CatalogScaffolder(dg.Scaffolder[CatalogScaffoldParams]):
    """Writes a commented defs.yaml that loads as written."""

    @classmethod
    def get_scaffold_params(cls) -> type[CatalogScaffoldParams]:
        return CatalogScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[CatalogScaffoldParams]) -> None:
        if request.scaffold_format != "yaml" or request.append:
            raise ValueError(
                "a Catalog is one defs.yaml in a folder of its own: scaffold it into a new "
                "folder without --format python or --append"
            )
        folder = catalog_name(request.target_path.name)
        dataset = request.params.dataset or f"{folder}_files"
        if not CATALOG_NAME.match(dataset):
            raise ValueError(
                f"--dataset '{dataset}' is not a valid name: lowercase letters, digits and '_', "
                "starting with a letter"
            )
        (request.target_path / "defs.yaml").write_text(
            CATALOG_TEMPLATE.substitute(dataset=dataset, folder=folder), encoding="utf-8"
        )


def catalog_name(folder: str) -> str:
    """A folder's name as a catalog name: lowercase, '_' for anything else, starting a letter."""
    name = re.sub(r"[^a-z0-9_]+", "_", folder.lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"catalog_{name}".rstrip("_")
    return name[:50]
