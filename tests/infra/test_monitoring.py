"""The requirements' alert thresholds, the database and job alarms, event notifications, and
what the containers learn about releases and tracing."""

from __future__ import annotations

import json

import pytest
from infra.components.alarms import DB_CONNECT_FAILED_METRIC, EMF_NAMESPACE, MIB
from infra.components.dashboard import FUNNEL
from infra.offline import OfflineRun, run_offline

from tests.infra.conftest import container, one
from tests.infra.test_config import _with

pytestmark = pytest.mark.infra


def _queries(run: OfflineRun, alarm: str) -> dict[str, dict[str, object]]:
    return {q["id"]: q for q in run.named(f"alarms-{alarm}").inputs["metricQueries"]}


def test_requirements_thresholds_are_the_defaults_of_both_stacks(run: OfflineRun) -> None:
    """5xx > 1 %, p95 > 2 s and conversion < 50 % hold in both stacks without overrides."""
    five_xx = run.named("alarms-alb-5xx-rate").inputs
    assert (five_xx["comparisonOperator"], five_xx["threshold"]) == ("GreaterThanThreshold", 1)
    latency = run.named("alarms-target-p95-latency").inputs
    assert latency["extendedStatistic"] == "p95"
    assert latency["metricName"] == "TargetResponseTime"
    assert (latency["comparisonOperator"], latency["threshold"]) == ("GreaterThanThreshold", 2)
    conversion = run.named("alarms-onboarding-conversion").inputs
    assert (conversion["comparisonOperator"], conversion["threshold"]) == ("LessThanThreshold", 50)


def test_error_rate_counts_the_load_balancers_own_5xx(run: OfflineRun) -> None:
    """The 5xx rate adds the ELB's own 5xx to the targets' before dividing by requests."""
    queries = _queries(run, "alb-5xx-rate")
    metrics = {q["metric"]["metricName"] for q in queries.values() if "metric" in q}
    assert metrics == {"RequestCount", "HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count"}
    assert "elb5xx" in str(queries["rate"]["expression"])


def test_thresholds_are_overridable_per_stack() -> None:
    """A stack file's alerts section overrides each requirement default."""
    config = _with(
        "staging", "alerts", errorRatePercent=5, p95LatencySeconds=3, conversionMinPercent=40
    )
    run = run_offline("staging", config)
    assert run.named("alarms-alb-5xx-rate").inputs["threshold"] == 5
    assert run.named("alarms-target-p95-latency").inputs["threshold"] == 3
    assert run.named("alarms-onboarding-conversion").inputs["threshold"] == 40


def test_conversion_reads_the_services_invite_metrics_with_a_minimum_volume(
    run: OfflineRun,
) -> None:
    """Conversion is accepted/created from the service's EMF counters over 24 h, and reads
    100 % below 20 invites so a quiet window cannot fire."""
    queries = _queries(run, "onboarding-conversion")
    environment = "staging" if run.stack == "staging" else "production"
    for query_id, metric_name in (
        ("created", "activity.invite_created"),
        ("accepted", "activity.invite_accepted"),
    ):
        metric = queries[query_id]["metric"]
        assert metric["namespace"] == EMF_NAMESPACE
        assert metric["metricName"] == metric_name
        assert metric["dimensions"] == {"Environment": environment}
        assert metric["period"] == 24 * 3600
        assert metric["stat"] == "Sum"
    expression = str(queries["result"]["expression"])
    assert expression.startswith("IF(FILL(created, 0) >= 20,")
    assert expression.endswith(", 100)")


def test_connection_failures_combine_the_service_and_rds_proxy(run: OfflineRun) -> None:
    """The service's failed-connection counter and the proxy's setup failures are summed."""
    queries = _queries(run, "db-connection-failures")
    metrics = {
        (q["metric"]["namespace"], q["metric"]["metricName"])
        for q in queries.values()
        if "metric" in q
    }
    assert metrics == {
        (EMF_NAMESPACE, DB_CONNECT_FAILED_METRIC),
        ("AWS/RDS", "DatabaseConnectionsSetupFailed"),
        ("AWS/RDS", "ClientConnectionsSetupFailedAuth"),
    }
    proxy = one(run, "aws:rds/proxy:Proxy").inputs["name"]
    assert queries["proxy_to_db"]["metric"]["dimensions"] == {"ProxyName": proxy}


def test_database_health_alarms(staging: OfflineRun, prod: OfflineRun) -> None:
    """Memory, transaction ids and disk queue everywhere; CPU credits only on burstable
    staging; replica lag only on prod's replica."""
    for run in (staging, prod):
        memory = run.named("alarms-rds-freeable-memory").inputs
        assert (memory["metricName"], memory["threshold"]) == ("FreeableMemory", 256 * MIB)
        xids = run.named("alarms-rds-transaction-ids").inputs
        assert (xids["metricName"], xids["threshold"]) == ("MaximumUsedTransactionIDs", 1e9)
        assert run.named("alarms-rds-disk-queue-depth").inputs["metricName"] == "DiskQueueDepth"
    assert staging.named("alarms-rds-cpu-credits").inputs["metricName"] == "CPUCreditBalance"
    lag = prod.named("alarms-rds-replica-lag").inputs
    assert lag["dimensions"] == {"DBInstanceIdentifier": "cortiware-prod-db-replica"}
    with pytest.raises(KeyError):
        prod.named("alarms-rds-cpu-credits")
    with pytest.raises(KeyError):
        staging.named("alarms-rds-replica-lag")


def test_failed_prune_task_rule_matches_a_non_zero_exit(run: OfflineRun) -> None:
    """The rule matches a STOPPED audit-prune task of this cluster with a non-zero exit code or
    a failed start, and the alarm counts the rule's matches."""
    rule = run.named("events-prune-failed").inputs
    pattern = json.loads(rule["eventPattern"])
    assert pattern["source"] == ["aws.ecs"]
    detail = pattern["detail"]
    assert detail["lastStatus"] == ["STOPPED"]
    assert detail["clusterArn"][0].endswith(f":cluster/cortiware-{run.stack}")
    prefix = detail["taskDefinitionArn"][0]["prefix"]
    assert prefix.endswith(f"task-definition/cortiware-{run.stack}-audit-prune:")
    assert {"containers": {"exitCode": [{"anything-but": 0}]}} in detail["$or"]
    alarm = run.named("alarms-prune-task-failed").inputs
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/Events", "MatchedEvents")
    assert alarm["dimensions"] == {"RuleName": rule["name"]}
    target = run.named("events-prune-failed-to-logs").inputs
    assert target["arn"].endswith(f"log-group:/cortiware/{run.stack}/events")


def test_failed_backup_rule_watches_the_database_vault(run: OfflineRun) -> None:
    """Failed, aborted or expired backup and copy jobs of the stack's vault fire an alarm."""
    rule = run.named("events-backup-failed").inputs
    pattern = json.loads(rule["eventPattern"])
    assert pattern["source"] == ["aws.backup"]
    assert set(pattern["detail-type"]) == {"Backup Job State Change", "Copy Job State Change"}
    assert set(pattern["detail"]["state"]) == {"FAILED", "ABORTED", "EXPIRED"}
    assert {"backupVaultName": [f"cortiware-{run.stack}-db"]} in pattern["detail"]["$or"]
    alarm = run.named("alarms-backup-job-failed").inputs
    assert alarm["dimensions"] == {"RuleName": rule["name"]}


def test_rds_and_elasticache_events_go_to_the_alarm_topic(run: OfflineRun) -> None:
    """RDS instance events and the Redis group's events are published to the paging topic,
    which both services may use (topic and key policies)."""
    topic = run.outputs["alarmTopicArn"]
    subscription = one(run, "aws:rds/eventSubscription:EventSubscription").inputs
    assert subscription["snsTopic"] == topic
    identifiers = {i.inputs["identifier"] for i in run.of_type("aws:rds/instance:Instance")}
    assert set(subscription["sourceIds"]) == identifiers
    assert "failover" in subscription["eventCategories"]
    group = one(run, "aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert group["notificationTopicArn"] == topic
    policy = json.loads(one(run, "aws:sns/topicPolicy:TopicPolicy").inputs["policy"])
    (publish,) = [s for s in policy["Statement"] if s["Sid"] == "ServicesPublish"]
    assert {"events.rds.amazonaws.com", "elasticache.amazonaws.com"} <= set(
        publish["Principal"]["Service"]
    )


def test_containers_get_the_release_and_trace_sampling(run: OfflineRun) -> None:
    """APP_VERSION is the deployed image tag and SENTRY_TRACES_SAMPLE_RATE defaults to 0.1,
    in every task definition."""
    for job in ("web", "migrate", "audit-prune"):
        definition = container(run, job)
        env = {e["name"]: e["value"] for e in definition["environment"]}
        tag = definition["image"].rsplit(":", 1)[1]
        assert env["APP_VERSION"] == tag == "0.1.0"
        assert env["SENTRY_TRACES_SAMPLE_RATE"] == "0.1"


def test_each_stack_has_a_dashboard_of_the_signals_that_matter(run: OfflineRun) -> None:
    """The stack's dashboard plots golden signals, the onboarding funnel, RDS, Redis and the
    canaries, and shows the state of every alarm of the stack."""
    dashboard = one(run, "aws:cloudwatch/dashboard:Dashboard").inputs
    assert dashboard["dashboardName"] == f"cortiware-{run.stack}" == run.outputs["dashboardName"]
    widgets = json.loads(dashboard["dashboardBody"])["widgets"]
    by_title = {w["properties"]["title"]: w["properties"] for w in widgets}
    assert set(by_title) == {
        "Traffic and errors",
        "Latency (target response time)",
        "Saturation (tasks)",
        "Onboarding funnel",
        "Database",
        "Redis",
        "Canaries (success %)",
        "Alarm states",
        "Database from the service (ms)",
    }
    funnel = [m[1] for m in by_title["Onboarding funnel"]["metrics"]]
    assert funnel == list(FUNNEL)
    canaries = {m[3] for m in by_title["Canaries (success %)"]["metrics"]}
    assert canaries == {c.inputs["name"] for c in run.of_type("aws:synthetics/canary:Canary")}
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert len(by_title["Alarm states"]["alarms"]) == len(alarms)
    latency = {m[-1]["stat"] for m in by_title["Latency (target response time)"]["metrics"]}
    assert "p95" in latency


def test_a_lasting_redis_fallback_pages_on_the_gauge(run: OfflineRun) -> None:
    """`redis-degraded` fires when any worker reported the fallback gauge at 1 for five
    minutes in a row: the page for health `degraded`, which the canary accepts."""
    inputs = run.named("alarms-redis-degraded").inputs
    environment = "staging" if run.stack == "staging" else "production"
    assert (inputs["namespace"], inputs["metricName"]) == (EMF_NAMESPACE, "redis.fallback.active")
    assert inputs["dimensions"] == {"Environment": environment}
    assert (inputs["statistic"], inputs["period"]) == ("Maximum", 60)
    assert (inputs["comparisonOperator"], inputs["threshold"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
    )
    assert inputs["evaluationPeriods"] == 5
    assert inputs["tags"]["Runbook"] == "runbooks/redis-degraded.md"


def test_pool_waits_alarm_on_the_service_p95_or_exhaustion(run: OfflineRun) -> None:
    """`db-pool-waits` reads the p95 of `db.pool.wait_ms` and counts any pool exhaustion as
    over the threshold (default 500 ms)."""
    inputs = run.named("alarms-db-pool-waits").inputs
    queries = {q["id"]: q for q in inputs["metricQueries"]}
    assert queries["wait"]["metric"]["metricName"] == "db.pool.wait_ms"
    assert queries["wait"]["metric"]["stat"] == "p95"
    assert queries["exhausted"]["metric"]["metricName"] == "database.pool_exhausted"
    assert "FILL(exhausted, 0) > 0, 501" in queries["result"]["expression"]
    assert (inputs["comparisonOperator"], inputs["threshold"]) == ("GreaterThanThreshold", 500)


@pytest.mark.parametrize(
    ("alarm", "metric"),
    [
        ("redis-fallback", "redis.fallback.activated"),
        ("webhook-failures", "webhooks.stripe.failed"),
    ],
)
def test_service_counters_that_need_on_call_have_alarms(
    run: OfflineRun, alarm: str, metric: str
) -> None:
    """The Redis fallback switch and failed Stripe events, counted by the service, alarm."""
    inputs = run.named(f"alarms-{alarm}").inputs
    environment = "staging" if run.stack == "staging" else "production"
    assert (inputs["namespace"], inputs["metricName"]) == (EMF_NAMESPACE, metric)
    assert inputs["dimensions"] == {"Environment": environment}
    assert (inputs["comparisonOperator"], inputs["threshold"]) == ("GreaterThanThreshold", 0)
