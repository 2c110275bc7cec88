from __future__ import annotations

import base64
import logging
import socket
from collections.abc import Iterator

import dagster as dg
import pytest

from ingestion_project.alerts.messages import Alert, drift_alert
from ingestion_project.alerts.webhook import AlertRoute, Delivery, send_alert, slack_payload
from ingestion_project_tests.alerts.receiver import CLOSE, HANG, Reply, WebhookReceiver

TOKEN = "fakeToken123"
VARIABLE = "INGESTION_TEST_ALERTS_URL"
ROUTE = AlertRoute(name="team_slack", url_env=VARIABLE, events=frozenset({"drift"}))
LOG = logging.getLogger("ingestion_project_tests.alerts")
ALERT = drift_alert(
    "busy_hours_drift",
    "2011-05",
    drift_share=0.83,
    threshold=0.5,
    drifted_features=["temp", "hum", "windspeed", "hr", "season"],
    magnitude=2.4,
    feature_count=6,
    link="http://dagster.local/runs/abc?tab=logs&x=1",
)


class Sleeps:
    """Records the pauses asked for instead of sleeping them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound but not listening: a connection to it is refused at once."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def send(
    url: str,
    sleeps: Sleeps,
    *,
    max_attempts: int = 3,
    timeout_seconds: float = 5.0,
    backoff_seconds: float = 0.5,
) -> Delivery:
    """Sends ALERT to the one route ROUTE, its variable set to ``url``."""
    (delivery,) = send_alert(
        ALERT,
        [ROUTE],
        log=LOG,
        environ={VARIABLE: url},
        sleep=sleeps,
        max_attempts=max_attempts,
        timeout_seconds=timeout_seconds,
        backoff_seconds=backoff_seconds,
    )
    return delivery


def test_delivers_the_slack_json_in_one_request(receiver: WebhookReceiver, sleeps: Sleeps) -> None:
    delivery = send(receiver.url(), sleeps)

    assert delivery == Delivery("team_slack", True, 1, 200, None)
    (request,) = receiver.received
    assert request.path == f"/services/T0FAKE/B0FAKE/{TOKEN}"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body == slack_payload(ALERT)
    assert body["text"].startswith("Drift on busy_hours_drift: 5 of 6 features\n")
    assert [block["type"] for block in body["blocks"]] == [
        "header",
        "section",
        "section",
        "context",
    ]
    assert sleeps.delays == []


def test_reads_the_variable_from_the_environment_at_send_time(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VARIABLE, receiver.url())

    (delivery,) = send_alert(ALERT, [ROUTE], log=LOG)

    assert delivery.delivered
    assert len(receiver.received) == 1


def test_credentials_in_the_url_become_basic_auth(
    receiver: WebhookReceiver, sleeps: Sleeps
) -> None:
    url = f"http://alerts:{TOKEN}@127.0.0.1:{receiver.port}/hook"

    delivery = send(url, sleeps)

    assert delivery.delivered
    (request,) = receiver.received
    assert request.path == "/hook"
    expected = base64.b64encode(f"alerts:{TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"


def test_retries_server_errors_then_delivers(receiver: WebhookReceiver, sleeps: Sleeps) -> None:
    receiver.script(Reply(500), Reply(503), Reply(200))

    delivery = send(receiver.url(), sleeps)

    assert delivery == Delivery("team_slack", True, 3, 200, None)
    assert len(receiver.received) == 3
    assert sleeps.delays == [0.5, 1.0]


def test_gives_up_after_max_attempts_with_a_warning(
    receiver: WebhookReceiver, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script(*[Reply(500)] * 5)
    caplog.set_level(logging.INFO, logger=LOG.name)

    delivery = send(receiver.url(), sleeps, max_attempts=4, backoff_seconds=2.0)

    assert delivery == Delivery("team_slack", False, 4, 500, "HTTP 500")
    assert len(receiver.received) == 4
    assert sleeps.delays == [2.0, 4.0, 5.0]
    failed = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert [line.split(": attempt ")[1][:7] for line in failed] == [
        "1 of 4 ",
        "2 of 4 ",
        "3 of 4 ",
        "4 of 4 ",
    ]
    assert all(f"route 'team_slack' (127.0.0.1:{receiver.port})" in line for line in failed)
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "not delivered" in warning.getMessage()
    assert "after 4 attempts: HTTP 500" in warning.getMessage()


def test_does_not_retry_a_client_error(receiver: WebhookReceiver, sleeps: Sleeps) -> None:
    receiver.script(Reply(404, body=b"no_service"))

    delivery = send(receiver.url(), sleeps)

    assert delivery == Delivery("team_slack", False, 1, 404, "HTTP 404 (no_service)")
    assert len(receiver.received) == 1
    assert sleeps.delays == []


def test_does_not_follow_a_redirect(receiver: WebhookReceiver, sleeps: Sleeps) -> None:
    receiver.script(Reply(302, headers={"Location": "/elsewhere"}))

    delivery = send(receiver.url(), sleeps)

    assert not delivery.delivered
    assert (delivery.attempts, delivery.status) == (1, 302)
    assert [request.path for request in receiver.received] == [f"/services/T0FAKE/B0FAKE/{TOKEN}"]


@pytest.mark.parametrize(("retry_after", "pause"), [("1", 1.0), ("120", 10.0), ("soon", 0.5)])
def test_honours_retry_after_on_429_within_a_cap(
    receiver: WebhookReceiver, sleeps: Sleeps, retry_after: str, pause: float
) -> None:
    receiver.script(Reply(429, headers={"Retry-After": retry_after}), Reply(200))

    delivery = send(receiver.url(), sleeps)

    assert (delivery.delivered, delivery.attempts) == (True, 2)
    assert sleeps.delays == [pause]


def test_a_server_that_does_not_answer_times_out(receiver: WebhookReceiver, sleeps: Sleeps) -> None:
    receiver.script(HANG, HANG)

    delivery = send(receiver.url(), sleeps, max_attempts=2, timeout_seconds=0.2)

    assert not delivery.delivered
    assert delivery.attempts == 2
    assert delivery.error == "TimeoutError: timed out"
    assert sleeps.delays == [0.5]


def test_a_closed_connection_is_retried(receiver: WebhookReceiver, sleeps: Sleeps) -> None:
    receiver.script(CLOSE, Reply(200))

    delivery = send(receiver.url(), sleeps)

    assert delivery == Delivery("team_slack", True, 2, 200, None)


def test_a_refused_connection_is_retried_then_reported(refused_port: int, sleeps: Sleeps) -> None:
    delivery = send(f"http://127.0.0.1:{refused_port}/hook/{TOKEN}", sleeps, max_attempts=2)

    assert delivery == Delivery(
        "team_slack", False, 2, None, "ConnectionRefusedError: Connection refused"
    )
    assert sleeps.delays == [0.5]


@pytest.mark.parametrize("environ", [{}, {VARIABLE: ""}, {VARIABLE: "  \n"}])
def test_an_unset_variable_is_a_warning_and_nothing_is_sent(
    receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture, environ: dict[str, str]
) -> None:
    caplog.set_level(logging.INFO, logger=LOG.name)

    deliveries = send_alert(ALERT, [ROUTE], log=LOG, environ=environ)

    assert deliveries == [
        Delivery("team_slack", False, 0, None, f"environment variable {VARIABLE} is not set")
    ]
    (warning,) = caplog.records
    assert warning.levelno == logging.WARNING
    assert VARIABLE in warning.getMessage()
    assert "route 'team_slack'" in warning.getMessage()
    assert receiver.received == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/services/T0FAKE/B0FAKE/fakeToken123",
        "file:///tmp/fakeToken123",
        "127.0.0.1/services/fakeToken123",
        "http:///services/fakeToken123",
    ],
)
def test_refuses_a_url_that_is_not_http(
    url: str, receiver: WebhookReceiver, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    delivery = send(url, sleeps)

    assert not delivery.delivered
    assert delivery.attempts == 0
    assert delivery.error is not None and "http(s) URL" in delivery.error
    assert any(VARIABLE in record.getMessage() for record in caplog.records)
    assert receiver.received == []


def test_an_unexpected_error_is_logged_with_its_type_and_reported(
    receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_sleep(seconds: float) -> None:
        raise RuntimeError("the clock broke")

    receiver.script(Reply(500))

    (delivery,) = send_alert(
        ALERT, [ROUTE], log=LOG, environ={VARIABLE: receiver.url()}, sleep=broken_sleep
    )

    assert delivery == Delivery(
        "team_slack", False, 1, None, "unexpected RuntimeError: the clock broke"
    )
    assert "RuntimeError" in caplog.records[-1].getMessage()
    assert caplog.records[-1].levelno == logging.WARNING


def test_routes_by_event_and_subject(receiver: WebhookReceiver, sleeps: Sleeps) -> None:
    routes = [
        AlertRoute("all_drift", "URL_ALL_DRIFT", frozenset({"drift"})),
        AlertRoute(
            "busy_team", "URL_BUSY_TEAM", frozenset({"drift", "promotion"}), frozenset({"busy"})
        ),
        AlertRoute("promotions", "URL_PROMOTIONS", frozenset({"promotion"})),
    ]
    environ = {route.url_env: receiver.url(f"/{route.name}") for route in routes}

    def sent(event: str, subject: str) -> list[str]:
        receiver.received.clear()
        alert = Alert(event=event, subject=subject, title="t", text="x")
        deliveries = send_alert(alert, routes, log=LOG, environ=environ, sleep=sleeps)
        assert all(delivery.delivered for delivery in deliveries)
        paths = sorted(request.path for request in receiver.received)
        assert paths == sorted(f"/{delivery.route}" for delivery in deliveries)
        return [delivery.route for delivery in deliveries]

    assert sent("drift", "busy") == ["all_drift", "busy_team"]
    assert sent("drift", "bikeshare_demand") == ["all_drift"]
    assert sent("promotion", "busy") == ["busy_team", "promotions"]
    assert sent("promotion", "bikeshare_demand") == ["promotions"]
    assert sent("performance_drop", "busy") == []


def test_route_events_must_be_known_names() -> None:
    with pytest.raises(ValueError, match="unknown events drfit"):
        AlertRoute("team_slack", VARIABLE, frozenset({"drfit"}))
    with pytest.raises(TypeError, match="set of names"):
        AlertRoute("team_slack", VARIABLE, "drift")  # type: ignore[arg-type]


SECRET_URL_SCENARIOS = {
    "delivered": [],
    "server errors": [Reply(500)] * 3,
    "404 echoing the path": [
        Reply(404, body=f"not found: /services/T0FAKE/B0FAKE/{TOKEN}".encode())
    ],
    "timeout": [HANG, HANG, HANG],
    "closed": [CLOSE, CLOSE, CLOSE],
}


@pytest.mark.parametrize("scenario", list(SECRET_URL_SCENARIOS))
def test_the_url_is_in_no_log_line_and_no_delivery(
    scenario: str, receiver: WebhookReceiver, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script(*SECRET_URL_SCENARIOS[scenario])
    caplog.set_level(logging.DEBUG)

    delivery = send(receiver.url(), sleeps, timeout_seconds=0.2)

    assert caplog.records
    assert_no_secret(caplog, delivery)


@pytest.mark.parametrize(
    "url",
    [
        f"http://user:{TOKEN}@127.0.0.1:1/hook",
        f"ftp://127.0.0.1/{TOKEN}",
        f"http://127.0.0.1:99999/{TOKEN}",
        f"http://127.0.0.1:1/hook {TOKEN}",
    ],
)
def test_a_bad_url_is_in_no_log_line_and_no_delivery(
    url: str, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    delivery = send(url, sleeps, max_attempts=2, timeout_seconds=0.5)

    assert not delivery.delivered
    assert_no_secret(caplog, delivery)


def assert_no_secret(caplog: pytest.LogCaptureFixture, delivery: Delivery) -> None:
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert record.exc_info is None
    assert TOKEN not in repr(delivery)


def test_takes_dagster_context_log(receiver: WebhookReceiver, sleeps: Sleeps) -> None:
    context = dg.build_asset_context()

    (delivery,) = send_alert(
        ALERT, [ROUTE], log=context.log, environ={VARIABLE: receiver.url()}, sleep=sleeps
    )

    assert delivery.delivered
