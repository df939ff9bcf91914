"""The secret-age function (run against moto's Secrets Manager and CloudWatch through boto3)
and its place in the stack: schedule, least-privilege role, alarm and runbook."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from infra.components.secret_age import SECRET_AGE_METRIC, SECRET_AGE_SCRIPT
from infra.offline import REPO_ROOT, OfflineRun
from moto import mock_aws

from tests.infra.conftest import one, policy_statements

pytestmark = pytest.mark.infra

Handler = Callable[..., int]


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Handler]:
    """The function's handler with the stack's environment, inside moto's AWS."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "SECRET_PREFIX": "cortiware/staging/",
        "METRIC_NAMESPACE": "Cortiware",
        "METRIC_NAME": SECRET_AGE_METRIC,
        "ENVIRONMENT": "staging",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        namespace: dict[str, Any] = {"__name__": "secret_age"}
        exec(compile(SECRET_AGE_SCRIPT, "secret_age.py", "exec"), namespace)  # noqa: S102
        yield namespace["handler"]


def _published(day: datetime.datetime) -> list[float]:
    statistics = boto3.client("cloudwatch").get_metric_statistics(
        Namespace="Cortiware",
        MetricName=SECRET_AGE_METRIC,
        Dimensions=[{"Name": "Environment", "Value": "staging"}],
        StartTime=day - datetime.timedelta(days=1),
        EndTime=day + datetime.timedelta(days=1),
        Period=86400,
        Statistics=["Maximum"],
    )
    return [point["Maximum"] for point in statistics["Datapoints"]]


def test_publishes_the_age_of_the_oldest_secret_of_the_stack(handler: Handler) -> None:
    """100 days after the stack's secrets were written the function publishes 100; another
    stack's secrets are not counted."""
    secrets = boto3.client("secretsmanager")
    for name in ("cortiware/staging/SESSION_SECRET", "cortiware/staging/STRIPE_SECRET_KEY"):
        secrets.create_secret(Name=name, SecretString="x")
    secrets.create_secret(Name="cortiware/prod/SESSION_SECRET", SecretString="x")
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=100, hours=1)
    assert handler(None, None, now=later) == 100
    assert _published(datetime.datetime.now(datetime.UTC)) == [100.0]


def test_publishes_zero_right_after_a_rotation(handler: Handler) -> None:
    """Freshly written secrets are zero days old."""
    boto3.client("secretsmanager").create_secret(
        Name="cortiware/staging/SESSION_SECRET", SecretString="x"
    )
    assert handler(None, None) == 0


def test_secret_age_alarm_runs_daily_with_a_narrow_role(run: OfflineRun) -> None:
    """A daily schedule invokes the function, whose role lists secrets (names and dates
    only) and puts metrics only in the service namespace; the alarm fires past 90 days."""
    function = one(run, "aws:lambda/function:Function").inputs
    assert function["environment"]["variables"]["SECRET_PREFIX"] == f"cortiware/{run.stack}/"
    assert function["loggingConfig"]["logGroup"] == f"/cortiware/{run.stack}/secret-age"
    statements = {s["Sid"]: s for s in policy_statements(run.named("secret-age-policy"))}
    assert statements["ListSecretsRequiresWildcard"]["Action"] == ["secretsmanager:ListSecrets"]
    assert "secretsmanager:GetSecretValue" not in json.dumps(statements)
    schedule = run.named("secret-age-schedule").inputs
    assert schedule["scheduleExpression"] == "cron(0 6 * * ? *)"
    alarm = run.named("alarms-secret-age").inputs
    assert (alarm["metricName"], alarm["threshold"]) == (SECRET_AGE_METRIC, 90)
    assert alarm["comparisonOperator"] == "GreaterThanThreshold"
    runbook = (REPO_ROOT / alarm["tags"]["Runbook"]).read_text()
    assert "secretRotation" in runbook
