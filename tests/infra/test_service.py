"""The Fargate service, its load balancer, jobs, autoscaling and logs."""

from __future__ import annotations

import json
import re

import pytest
from infra.offline import ACCOUNT_ID, REPO_ROOT, OfflineRun

from cortiware.settings import config_report
from tests.infra.conftest import container, one

pytestmark = pytest.mark.infra

JOBS = ("web", "migrate", "audit-prune")


def _dockerfile_exec_form(instruction: str) -> list[str]:
    """The JSON (exec-form) argument list of a Dockerfile instruction, continuation lines joined."""
    text = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    (line,) = [ln for ln in text.splitlines() if ln.startswith(f"{instruction} ")]
    arguments: list[str] = json.loads(line.split(" CMD ", 1)[-1].removeprefix(f"{instruction} "))
    return arguments


def _override_commands() -> list[tuple[str, list[str]]]:
    """Every ``"command":[...]`` of a run-task override in docs/infra.md and the runbooks."""
    found = []
    for path in [REPO_ROOT / "docs" / "infra.md", *(REPO_ROOT / "runbooks").glob("*.md")]:
        for match in re.finditer(r'"command":(\[[^\]]*\])', path.read_text()):
            found.append((path.name, json.loads(match.group(1))))
    return found


def test_web_container_serves_with_workers_and_liveness_check(run: OfflineRun) -> None:
    """The web container runs `cortiware serve` on 0.0.0.0:8000 and probes /api/health/live.

    The image's entry point is `cortiware`, so the command holds `serve` and its arguments."""
    web = container(run, "web")
    workers = "2" if run.stack == "staging" else "4"
    assert web["command"] == [
        "serve",
        "--host",
        "0.0.0.0",  # noqa: S104 - the expected command line, not a bind
        "--port",
        "8000",
        "--workers",
        workers,
    ]
    assert web["portMappings"][0]["containerPort"] == 8000
    assert "/api/health/live" in " ".join(web["healthCheck"]["command"])
    assert web["image"].endswith(":0.1.0")
    assert ".dkr.ecr." in web["image"]


def test_commands_are_arguments_of_the_dockerfile_entry_point(run: OfflineRun) -> None:
    """No ECS command repeats the image's ENTRYPOINT (ECS `command` replaces only CMD)."""
    entrypoint = _dockerfile_exec_form("ENTRYPOINT")
    assert entrypoint == ["cortiware"]
    for job in JOBS:
        command = container(run, job)["command"]
        assert command, job
        assert command[: len(entrypoint)] != entrypoint, job
        assert command[0] in {"serve", "migrate", "audit"}, job


def test_documented_run_task_overrides_omit_the_entry_point() -> None:
    """Command overrides in docs/infra.md and the runbooks start with the subcommand."""
    entrypoint = _dockerfile_exec_form("ENTRYPOINT")
    overrides = _override_commands()
    assert overrides
    for source, command in overrides:
        assert command[: len(entrypoint)] != entrypoint, source


def test_web_health_check_uses_the_images_interpreter(run: OfflineRun) -> None:
    """The ECS health check runs (exec form) the same interpreter as the Dockerfile's
    HEALTHCHECK, by absolute path, against the liveness endpoint within its timeout."""
    check = container(run, "web")["healthCheck"]
    interpreter = _dockerfile_exec_form("HEALTHCHECK")[0]
    assert interpreter.startswith("/")
    assert check["command"][:3] == ["CMD", interpreter, "-c"]
    script = check["command"][3]
    compile(script, "healthcheck", "exec")
    assert "http://127.0.0.1:8000/api/health/live" in script
    timeout = float(re.findall(r"timeout=(\d+)", script)[0])
    assert timeout < check["timeout"]


def test_environment_names_the_app_env_and_origin(staging: OfflineRun, prod: OfflineRun) -> None:
    """APP_ENV is staging/production and BASE_URL is the stack's HTTPS origin."""
    for run, app_env, url in (
        (staging, "staging", "https://staging.cortiware.example.com"),
        (prod, "production", "https://app.cortiware.example.com"),
    ):
        env = {e["name"]: e["value"] for e in container(run, "web")["environment"]}
        assert env["APP_ENV"] == app_env
        assert env["BASE_URL"] == url
        assert run.outputs["url"] == url


def test_checkout_payment_methods_are_the_stacks_and_valid(
    staging: OfflineRun, prod: OfflineRun
) -> None:
    """Each stack's `stripePaymentMethods` reaches the containers as STRIPE_PAYMENT_METHODS,
    in a form the service's own settings parser accepts for that environment."""
    for run, app_env in ((staging, "staging"), (prod, "production")):
        env = {e["name"]: e["value"] for e in container(run, "web")["environment"]}
        methods = env["STRIPE_PAYMENT_METHODS"]
        assert methods == "card,us_bank_account,sepa_debit"
        _, _, problems = config_report({"APP_ENV": app_env, "STRIPE_PAYMENT_METHODS": methods})
        assert not [p for p in problems if p.startswith("STRIPE_PAYMENT_METHODS")]


def test_migration_and_prune_jobs(run: OfflineRun) -> None:
    """Migrations run `cortiware migrate`; a daily schedule prunes into the archive prefix."""
    assert container(run, "migrate")["command"] == ["migrate"]
    bucket = run.outputs["archiveBucket"]
    prune = container(run, "audit-prune")["command"]
    assert prune == ["audit", "prune", "--archive-to", f"s3://{bucket}/audit/"]
    schedule = run.named("service-audit-prune")
    assert schedule.inputs["scheduleExpression"].startswith("cron(")
    ecs = schedule.inputs["target"]["ecsParameters"]
    assert ecs["taskDefinitionArn"].endswith(f"cortiware-{run.stack}-audit-prune:1")
    assert ecs["networkConfiguration"]["assignPublicIp"] is False
    assert run.outputs["migrationTaskDefinitionArn"].endswith(f"cortiware-{run.stack}-migrate:1")


def test_service_rolls_back_failed_deployments(run: OfflineRun) -> None:
    """The ECS service uses the deployment circuit breaker with rollback, in private subnets."""
    service = one(run, "aws:ecs/service:Service")
    assert service.inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert service.inputs["networkConfiguration"]["assignPublicIp"] is False
    assert service.inputs["launchType"] == "FARGATE"
    assert "desiredCount" in service.ignore_changes


def test_cluster_has_container_insights(run: OfflineRun) -> None:
    """The ECS cluster has Container Insights enabled (the running-task alarm needs it)."""
    cluster = one(run, "aws:ecs/cluster:Cluster")
    assert {"name": "containerInsights", "value": "enabled"} in cluster.inputs["settings"]


def test_http_redirects_to_https_with_modern_tls(run: OfflineRun) -> None:
    """Port 80 redirects to HTTPS; 443 uses a TLS 1.2+ policy and the validated certificate."""
    listeners = {lst.inputs["port"]: lst for lst in run.of_type("aws:lb/listener:Listener")}
    redirect = listeners[80].inputs["defaultActions"][0]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"]["protocol"] == "HTTPS"
    assert redirect["redirect"]["statusCode"] == "HTTP_301"
    https = listeners[443].inputs
    assert https["protocol"] == "HTTPS"
    assert https["sslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    assert https["certificateArn"]
    certificate = one(run, "aws:acm/certificate:Certificate")
    assert certificate.inputs["validationMethod"] == "DNS"


def test_target_group_checks_readiness(run: OfflineRun) -> None:
    """The target group health-checks the readiness path (no database check) on the app port."""
    group = one(run, "aws:lb/targetGroup:TargetGroup")
    assert group.inputs["healthCheck"]["path"] == "/api/health/ready"
    assert group.inputs["port"] == 8000
    assert group.inputs["targetType"] == "ip"


def test_target_health_outlasts_a_multi_az_failover(run: OfflineRun) -> None:
    """A target turns unhealthy only after 150 s or more of failed readiness checks, longer
    than a Multi-AZ failover (60-120 s), so a failover does not make ECS replace every task."""
    check = one(run, "aws:lb/targetGroup:TargetGroup").inputs["healthCheck"]
    assert check["path"] == "/api/health/ready"
    assert check["unhealthyThreshold"] * check["interval"] >= 150
    assert check["timeout"] < check["interval"]


def test_autoscaling_on_cpu_and_requests(run: OfflineRun) -> None:
    """The service scales between the stack's bounds on CPU and on requests per target."""
    target = one(run, "aws:appautoscaling/target:Target")
    bounds = (1, 3) if run.stack == "staging" else (3, 12)
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == bounds
    metrics = {
        p.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"][
            "predefinedMetricType"
        ]
        for p in run.of_type("aws:appautoscaling/policy:Policy")
    }
    assert metrics == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}


@pytest.mark.parametrize(
    ("group", "staging_days", "prod_days"),
    [("service-logs", 30, 365), ("cache-slow-log", 14, 90), ("network-flow-logs", 30, 365)],
)
def test_log_groups_have_retention(
    staging: OfflineRun, prod: OfflineRun, group: str, staging_days: int, prod_days: int
) -> None:
    """Every log group expires its events after the stack's retention."""
    assert staging.named(group).inputs["retentionInDays"] == staging_days
    assert prod.named(group).inputs["retentionInDays"] == prod_days


def test_every_log_group_has_retention(run: OfflineRun) -> None:
    """No log group keeps events forever."""
    for group in run.of_type("aws:cloudwatch/logGroup:LogGroup"):
        assert group.inputs.get("retentionInDays", 0) > 0, group.name


def test_repository_is_immutable_and_scanned(run: OfflineRun) -> None:
    """ECR tags are immutable and images are scanned on push."""
    repository = one(run, "aws:ecr/repository:Repository")
    assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
    assert repository.inputs["imageScanningConfiguration"]["scanOnPush"] is True
    policy = json.loads(one(run, "aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])
    assert policy["rules"][0]["action"]["type"] == "expire"


def test_load_balancer_deletion_protection_in_prod(staging: OfflineRun, prod: OfflineRun) -> None:
    """The prod load balancer cannot be deleted by accident; staging's can."""
    assert one(prod, "aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is True
    assert (
        one(staging, "aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is False
    )


def _rds_log_groups(run: OfflineRun) -> set[str]:
    identifiers = [f"cortiware-{run.stack}-db"]
    if run.stack == "prod":
        identifiers.append("cortiware-prod-db-replica")
    logs = ("postgresql", "upgrade")
    return {f"/aws/rds/instance/{i}/{log}" for i in identifiers for log in logs}


def test_every_log_group_is_encrypted_with_the_stacks_logs_key(run: OfflineRun) -> None:
    """All log groups use one rotating CMK, which CloudWatch Logs may use only for log
    groups under the stack's own path and for the stack's RDS log-export groups by name."""
    key = run.named("logs-key")
    assert key.inputs["enableKeyRotation"] is True
    groups = run.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert groups
    prefix = "/cortiware/" + run.stack
    rds_groups = _rds_log_groups(run)
    assert len({group.inputs["kmsKeyId"] for group in groups}) == 1
    for group in groups:
        assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:eu-west-1:"), group.name
        name = group.inputs["name"]
        assert name.startswith(prefix + "/") or name in rds_groups, group.name
    statements = json.loads(key.inputs["policy"])["Statement"]
    service = {"Service": "logs.eu-west-1.amazonaws.com"}
    (logs,) = [s for s in statements if s["Principal"] == service]
    assert "kms:*" not in logs["Action"]
    arns = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    group_arn = f"arn:aws:logs:eu-west-1:{ACCOUNT_ID}:log-group:"
    assert sorted(arns) == sorted(
        [f"{group_arn}{prefix}/*", *(f"{group_arn}{g}" for g in rds_groups)]
    )


def test_rds_log_export_groups_are_declared_before_the_instances(run: OfflineRun) -> None:
    """Each instance's postgresql and upgrade export groups are declared with the stack's
    retention and logs CMK, and the instance waits for them, so RDS never creates them."""
    groups = {
        g.inputs["name"]: g
        for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.inputs["name"].startswith("/aws/rds/")
    }
    assert set(groups) == _rds_log_groups(run)
    days = 30 if run.stack == "staging" else 365
    key_arn = run.named("service-logs").inputs["kmsKeyId"]
    for group in groups.values():
        assert group.inputs["retentionInDays"] == days, group.name
        assert group.inputs["kmsKeyId"] == key_arn, group.name
    for instance in run.of_type("aws:rds/instance:Instance"):
        identifier = instance.inputs["identifier"]
        assert set(instance.inputs["enabledCloudwatchLogsExports"]) == {"postgresql", "upgrade"}
        own = [g for name, g in groups.items() if name.split("/")[4] == identifier]
        assert len(own) == 2, identifier
        for group in own:
            assert group.urn in instance.dependencies, (identifier, group.name)
