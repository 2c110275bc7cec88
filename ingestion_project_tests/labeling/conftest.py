"""The labeling tests' fixtures: Label Studio for the session (the root conftest), a labeler each.

``labeling`` lives in labeler.py so that the web UI test can use it too.
"""

from ingestion_project_tests.labeling.labeler import labeling  # noqa: F401  (fixture)
