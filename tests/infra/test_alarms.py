"""Alarms and their runbooks, the alarm topic's subscribers, and the health canary."""

from __future__ import annotations

import pytest
from infra.components.alarms import GIB
from infra.components.canary import CANARY_SCRIPT
from infra.offline import REPO_ROOT, OfflineRun

from tests.infra.conftest import one

pytestmark = pytest.mark.infra

EXPECTED = {
    "alb-5xx-rate",
    "target-p99-latency",
    "unhealthy-hosts",
    "rds-cpu",
    "rds-free-storage",
    "rds-connections",
    "redis-cpu",
    "redis-memory",
    "redis-evictions",
    "ecs-running-tasks",
    "canary-success",
}
RUNBOOK_SECTIONS = ("## What it means", "## First checks", "## Mitigation", "## Escalation")


def test_every_alarm_points_at_an_existing_runbook(run: OfflineRun) -> None:
    """Each alarm's Runbook tag and description name runbooks/<alarm>.md, and that file exists."""
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    shorts = {a.inputs["name"].removeprefix(f"cortiware-{run.stack}-") for a in alarms}
    assert shorts == EXPECTED
    for alarm in alarms:
        short = alarm.inputs["name"].removeprefix(f"cortiware-{run.stack}-")
        runbook = alarm.inputs["tags"]["Runbook"]
        assert runbook == f"runbooks/{short}.md"
        assert runbook in alarm.inputs["alarmDescription"]
        assert (REPO_ROOT / runbook).is_file(), runbook


@pytest.mark.parametrize("alarm", sorted(EXPECTED))
def test_each_runbook_has_the_operator_sections(alarm: str) -> None:
    """Every alarm runbook explains meaning, first checks, mitigation and escalation."""
    text = (REPO_ROOT / "runbooks" / f"{alarm}.md").read_text()
    for section in RUNBOOK_SECTIONS:
        assert section in text, section
    assert "cortiware smoke --base-url" in text


def test_process_runbooks_exist() -> None:
    """Deploy, rollback and point-in-time restore runbooks exist."""
    for name in ("deploy", "rollback", "restore-database"):
        assert (REPO_ROOT / "runbooks" / f"{name}.md").is_file()


def test_alarms_notify_the_topic_on_alarm_and_recovery(run: OfflineRun) -> None:
    """Every alarm sends ALARM and OK to the stack's encrypted SNS topic."""
    topic = run.outputs["alarmTopicArn"]
    for alarm in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        assert alarm.inputs["alarmActions"] == [topic]
        assert alarm.inputs["okActions"] == [topic]
    assert one(run, "aws:sns/topic:Topic").inputs["kmsMasterKeyId"].startswith("arn:aws:kms:")


def test_email_subscriptions_come_from_config(staging: OfflineRun, prod: OfflineRun) -> None:
    """Each configured alert address is an e-mail subscription of the topic."""
    for run, emails in (
        (staging, {"oncall-staging@cortiware.example.com"}),
        (prod, {"oncall@cortiware.example.com", "platform@cortiware.example.com"}),
    ):
        subscriptions = run.of_type("aws:sns/topicSubscription:TopicSubscription")
        assert {s.inputs["endpoint"] for s in subscriptions} == emails
        assert {s.inputs["protocol"] for s in subscriptions} == {"email"}


def test_redis_alarms_watch_every_node(prod: OfflineRun) -> None:
    """Redis alarms take the worst of all nodes, so a failover does not blind them."""
    alarm = prod.named("alarms-redis-memory")
    nodes = [q for q in alarm.inputs["metricQueries"] if "metric" in q]
    ids = {q["metric"]["dimensions"]["CacheClusterId"] for q in nodes}
    assert ids == {f"cortiware-prod-redis-00{i}" for i in (1, 2, 3)}


def test_running_task_alarm_compares_running_with_desired(run: OfflineRun) -> None:
    """The ECS alarm fires when running tasks stay below desired."""
    alarm = run.named("alarms-ecs-running-tasks")
    expression = [q for q in alarm.inputs["metricQueries"] if q.get("expression")]
    assert expression[0]["expression"] == "desired - running"
    assert alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"


def test_canary_checks_health_every_five_minutes(run: OfflineRun) -> None:
    """The canary calls the stack's /api/health every 5 minutes with its own bucket and role."""
    canary = one(run, "aws:synthetics/canary:Canary")
    assert canary.inputs["schedule"]["expression"] == "rate(5 minutes)"
    assert canary.inputs["runConfig"]["environmentVariables"]["BASE_URL"] == run.outputs["url"]
    assert canary.inputs["executionRoleArn"].endswith(":role/canary-role")
    assert canary.inputs["artifactS3Location"].startswith(
        f"s3://cortiware-{run.stack}-canary-artifacts-"
    )
    assert canary.inputs["startCanary"] is True
    assert "/api/health" in CANARY_SCRIPT
    compile(CANARY_SCRIPT, "health_check.py", "exec")
    alarm = run.named("canary-success")
    assert alarm.inputs["metricName"] == "SuccessPercent"
    assert alarm.inputs["dimensions"] == {"CanaryName": canary.inputs["name"]}


def test_canary_role_is_scoped_to_its_bucket_and_logs(run: OfflineRun) -> None:
    """The canary writes only its artifact prefix and its own Lambda log groups."""
    from tests.infra.conftest import policy_statements

    statements = {s["Sid"]: s for s in policy_statements(run.named("canary-policy"))}
    bucket = one(run, "aws:synthetics/canary:Canary").inputs["artifactS3Location"]
    bucket_name = bucket.removeprefix("s3://").split("/")[0]
    assert statements["WriteOwnArtifacts"]["Resource"] == [f"arn:aws:s3:::{bucket_name}/runs/*"]
    logs = statements["WriteOwnLambdaLogs"]["Resource"][0]
    assert logs.endswith(f"log-group:/aws/lambda/cwsyn-cw-{run.stack}-health-*")


def test_free_storage_alarm_sits_below_the_autoscaling_trigger(run: OfflineRun) -> None:
    """The free-storage alarm fires below 10% free of the allocated storage, where RDS storage
    autoscaling grows the volume, so it does not stay in ALARM after a normal growth."""
    alarm = run.named("alarms-rds-free-storage")
    allocated = run.named("database-instance").inputs["allocatedStorage"]
    assert alarm.inputs["comparisonOperator"] == "LessThanThreshold"
    assert alarm.inputs["threshold"] < 0.10 * allocated * GIB
    assert alarm.inputs["threshold"] == 0.05 * allocated * GIB


def test_canary_bucket_expires_run_artifacts_but_never_its_code(run: OfflineRun) -> None:
    """Expiry is scoped to the prefix the canary writes its runs to, and the code object's
    key lies outside every expiring rule."""
    canary = one(run, "aws:synthetics/canary:Canary")
    location = canary.inputs["artifactS3Location"].removeprefix("s3://")
    bucket_name, runs_prefix = location.split("/", 1)
    assert runs_prefix == "runs/"
    (lifecycle,) = [
        c
        for c in run.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
        if c.inputs["bucket"] == bucket_name
    ]
    assert canary.inputs["s3Bucket"] == bucket_name
    code_key = canary.inputs["s3Key"]
    for rule in lifecycle.inputs["rules"]:
        prefix = rule["filter"]["prefix"]
        assert prefix == runs_prefix, rule["id"]
        assert not code_key.startswith(prefix), rule["id"]
    days = 14 if run.stack == "staging" else 31
    assert [r["expiration"]["days"] for r in lifecycle.inputs["rules"]] == [days]
