from __future__ import annotations

from ingestion_project.alerts.messages import Alert
from ingestion_project.alerts.webhook import slack_payload


def test_slack_payload_escapes_user_text() -> None:
    alert = Alert(
        event="drift",
        subject="m",
        title="Drift on <m> & co",
        text="share > 0.5 & rising <now>",
        fields={"a<b": "x&y"},
        link="http://dagster.local/runs?x=1&y=<2>|3",
    )

    payload = slack_payload(alert)

    header, text, fields, context = payload["blocks"]
    assert header["text"] == {"type": "plain_text", "text": "Drift on <m> & co"}
    assert text["text"]["text"] == "share &gt; 0.5 &amp; rising &lt;now&gt;"
    assert fields["fields"] == [{"type": "mrkdwn", "text": "*a&lt;b*\nx&amp;y"}]
    assert context["elements"][0]["text"] == (
        "<http://dagster.local/runs?x=1&amp;y=%3C2%3E%7C3|Open in Dagster>"
    )
    assert payload["text"].splitlines()[:3] == [
        "Drift on &lt;m&gt; &amp; co",
        "share &gt; 0.5 &amp; rising &lt;now&gt;",
        "a&lt;b: x&amp;y",
    ]


def test_slack_payload_keeps_within_slack_limits() -> None:
    alert = Alert(
        event="drift",
        subject="m",
        title="t" * 200,
        text="&" * 1000,
        fields={f"field {number}": number for number in range(12)},
    )

    payload = slack_payload(alert)

    header, text, *sections = payload["blocks"]
    assert len(header["text"]["text"]) == 150
    assert len(text["text"]["text"]) <= 3000
    assert text["text"]["text"].endswith("&amp;…")
    assert [len(section["fields"]) for section in sections] == [10, 2]
    assert [section["type"] for section in sections] == ["section", "section"]
