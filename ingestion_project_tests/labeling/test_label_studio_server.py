"""The Label Studio server the labeling tests run: up, and its API token authenticates."""

from __future__ import annotations

import requests

from ingestion_project_tests.label_studio import LabelStudioServer


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment for 127.0.0.1
    return session


def test_label_studio_is_up_and_its_token_authenticates(label_studio: LabelStudioServer) -> None:
    session = _session()
    assert session.get(f"{label_studio.url}/health", timeout=10).json() == {"status": "UP"}

    whoami = session.get(
        f"{label_studio.url}/api/current-user/whoami",
        headers={"Authorization": f"Token {label_studio.token}"},
        timeout=10,
    )
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["email"] == label_studio.username

    wrong = session.get(
        f"{label_studio.url}/api/current-user/whoami",
        headers={"Authorization": "Token not-the-token"},
        timeout=10,
    )
    assert wrong.status_code == 401, wrong.text
