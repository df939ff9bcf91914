"""Alarms and their runbooks, the alarm topic's subscribers, and the health canary."""

from __future__ import annotations

import pytest
from infra.components.alarms import GIB
from infra.components.canary import CANARY_SCRIPT, CHECKS
from infra.offline import REPO_ROOT, OfflineRun

from tests.infra.conftest import one

pytestmark = pytest.mark.infra

EXPECTED = {
    "alb-5xx-rate",
    "target-p95-latency",
    "onboarding-conversion",
    "redis-degraded",
    "db-pool-waits",
    "db-connection-failures",
    "rds-freeable-memory",
    "rds-transaction-ids",
    "rds-disk-queue-depth",
    "prune-task-failed",
    "backup-job-failed",
    "secret-age",
    "redis-fallback",
    "webhook-failures",
    "unhealthy-hosts",
    "rds-cpu",
    "rds-free-storage",
    "rds-connections",
    "redis-cpu",
    "redis-memory",
    "redis-evictions",
    "ecs-running-tasks",
    "canary-success",
    "canary-verify-success",
    "canary-provider-success",
    "canary-owner-success",
}
EXPECTED_BY_STACK = {
    # Burstable db.t4g in staging earns CPU credits; prod has a read replica.
    "staging": {*EXPECTED, "rds-cpu-credits"},
    "prod": {*EXPECTED, "rds-replica-lag"},
}
SHARED_RUNBOOKS = {
    f"canary-{check}-success": "canary-success" for check in ("verify", "provider", "owner")
}
"""Alarms of one kind that share a runbook."""
RUNBOOK_SECTIONS = (
    "## Meaning",
    "## Impact",
    "## Diagnosis",
    "## Mitigation",
    "## Rollback",
    "## Verification",
    "## Escalation",
)
"""The runbook format every alarm runbook follows."""


def test_every_alarm_points_at_an_existing_runbook(run: OfflineRun) -> None:
    """Each alarm's Runbook tag and description name runbooks/<alarm>.md (the canaries share
    one), and that file exists."""
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    shorts = {a.inputs["name"].removeprefix(f"cortiware-{run.stack}-") for a in alarms}
    assert shorts == EXPECTED_BY_STACK[run.stack]
    for alarm in alarms:
        short = alarm.inputs["name"].removeprefix(f"cortiware-{run.stack}-")
        runbook = alarm.inputs["tags"]["Runbook"]
        assert runbook == f"runbooks/{SHARED_RUNBOOKS.get(short, short)}.md"
        assert runbook in alarm.inputs["alarmDescription"]
        assert (REPO_ROOT / runbook).is_file(), runbook


@pytest.mark.parametrize(
    "alarm", sorted({SHARED_RUNBOOKS.get(a, a) for a in set.union(*EXPECTED_BY_STACK.values())})
)
def test_each_runbook_has_the_operator_sections(alarm: str) -> None:
    """Every alarm runbook has the operator sections, from meaning to escalation."""
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
        subscriptions = [
            s
            for s in run.of_type("aws:sns/topicSubscription:TopicSubscription")
            if s.inputs["protocol"] == "email"
        ]
        assert {s.inputs["endpoint"] for s in subscriptions} == emails


def test_pager_endpoint_is_an_https_subscriber_per_stack(run: OfflineRun) -> None:
    """Each stack's pagerUrl is an auto-confirming HTTPS subscription of the alarm topic."""
    (pager,) = [
        s
        for s in run.of_type("aws:sns/topicSubscription:TopicSubscription")
        if s.inputs["protocol"] == "https"
    ]
    assert pager.inputs["endpoint"] == (
        f"https://events.pagerduty.example.com/integration/cortiware-{run.stack}/enqueue"
    )
    assert pager.inputs["topic"] == run.outputs["alarmTopicArn"]
    assert pager.inputs["endpointAutoConfirms"] is True


def test_paging_runbook_proves_delivery_with_set_alarm_state() -> None:
    """The paging runbook drives a real alarm through the topic and checks the action history."""
    text = (REPO_ROOT / "runbooks" / "paging.md").read_text()
    assert "aws cloudwatch set-alarm-state" in text
    assert "describe-alarm-history" in text
    for section in RUNBOOK_SECTIONS:
        assert section in text, section


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


def test_canaries_check_the_four_required_endpoints_every_five_minutes(run: OfflineRun) -> None:
    """One canary per required endpoint (health, verify, provider, owner) runs the shared
    script with its CHECK every 5 minutes, with the shared bucket and role and an alarm."""
    canaries = {c.inputs["name"]: c for c in run.of_type("aws:synthetics/canary:Canary")}
    assert set(canaries) == {f"cw-{run.stack}-{check}" for check in CHECKS}
    assert set(CHECKS.values()) == {"/api/health", "/api/onboarding/verify", "/provider", "/owner"}
    compile(CANARY_SCRIPT, "endpoint_checks.py", "exec")
    for check, path in CHECKS.items():
        canary = canaries[f"cw-{run.stack}-{check}"].inputs
        assert path in CANARY_SCRIPT
        assert canary["schedule"]["expression"] == "rate(5 minutes)"
        assert canary["runConfig"]["environmentVariables"] == {
            "BASE_URL": run.outputs["url"],
            "CHECK": check,
        }
        assert canary["handler"] == "endpoint_checks.handler"
        assert canary["executionRoleArn"].endswith(":role/canary-role")
        assert canary["artifactS3Location"].startswith(
            f"s3://cortiware-{run.stack}-canary-artifacts-"
        )
        assert canary["startCanary"] is True
        alarm_name = "canary-success" if check == "health" else f"canary-{check}-success"
        (alarm,) = [
            a
            for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
            if a.inputs["name"] == f"cortiware-{run.stack}-{alarm_name}"
        ]
        assert alarm.inputs["metricName"] == "SuccessPercent"
        assert alarm.inputs["dimensions"] == {"CanaryName": canary["name"]}
        assert alarm.inputs["tags"]["Runbook"] == "runbooks/canary-success.md"
    assert run.outputs["canaryName"] == f"cw-{run.stack}-health"


def test_canary_role_is_scoped_to_its_bucket_and_logs(run: OfflineRun) -> None:
    """The canaries write only their artifact prefix and their own Lambda log groups."""
    from tests.infra.conftest import policy_statements

    statements = {s["Sid"]: s for s in policy_statements(run.named("canary-policy"))}
    bucket = run.of_type("aws:synthetics/canary:Canary")[0].inputs["artifactS3Location"]
    bucket_name = bucket.removeprefix("s3://").split("/")[0]
    assert statements["WriteOwnArtifacts"]["Resource"] == [f"arn:aws:s3:::{bucket_name}/runs/*"]
    logs = statements["WriteOwnLambdaLogs"]["Resource"]
    assert sorted(group.split("log-group:")[1] for group in logs) == sorted(
        f"/aws/lambda/cwsyn-cw-{run.stack}-{check}-*" for check in CHECKS
    )


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
    canary = run.of_type("aws:synthetics/canary:Canary")[0]
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
