"""Stack configuration is validated once, with errors naming the key."""

from __future__ import annotations

import json

import pytest
from infra.config import ConfigError
from infra.offline import run_offline, stack_config

pytestmark = pytest.mark.infra


def _with(stack: str, key: str, **changes: object) -> dict[str, str]:
    config = stack_config(stack)
    section = json.loads(config[f"cortiware:{key}"])
    section.update(changes)
    config[f"cortiware:{key}"] = json.dumps(section)
    return config


@pytest.mark.parametrize(
    ("key", "changes", "message"),
    [
        ("database", {"backupRetentionDays": 3}, "database.backupRetentionDays=3"),
        ("database", {"engineVersion": "15.7"}, "database.engineVersion must be"),
        ("database", {"engineVersion": "16.6"}, "RDS applies minor versions itself"),
        ("cache", {"automaticFailover": True, "numCacheClusters": 1}, "numCacheClusters"),
        ("network", {"azCount": 1}, "network.azCount=1"),
        ("service", {"minCount": 5}, "minCount <= desiredCount <= maxCount"),
        ("domain", {"name": None, "certificateArn": None}, "only serves HTTPS"),
        ("alerts", {"dbMinFreeStorageGb": 2}, "alerts.dbMinFreeStorageGb=2 must be below 10%"),
        ("alerts", {"pagerUrl": "http://pager.example.com"}, "alerts.pagerUrl must be an https"),
        ("alerts", {"conversionWindowHours": 25}, "alerts.conversionWindowHours=25"),
        ("service", {"sentryTracesSampleRate": 1.5}, "sentryTracesSampleRate must be between"),
        (
            "database",
            {"performanceInsightsRetentionDays": 30},
            "database.performanceInsightsRetentionDays=30 must be 7, 731 or a multiple of 31",
        ),
        (
            "database",
            {"performanceInsightsRetentionDays": 744},
            "database.performanceInsightsRetentionDays=744 is outside 7..731",
        ),
        (
            "database",
            {"monitoringIntervalSeconds": 20},
            "database.monitoringIntervalSeconds=20 must be one of 1, 5, 10, 15, 30, 60",
        ),
        (
            "database",
            {"monitoringIntervalSeconds": 0},
            "database.monitoringIntervalSeconds=0 is outside 1..60",
        ),
        ("service", {"cpu": 300}, "service.cpu=300 must be one of 256, 512, 1024"),
        (
            "service",
            {"cpu": 512, "memoryMib": 512},
            "service.memoryMib=512 is not a Fargate size for cpu=512: allowed 1024-4096 in steps",
        ),
        (
            "service",
            {"cpu": 1024, "memoryMib": 2500},
            "service.memoryMib=2500 is not a Fargate size for cpu=1024: allowed 2048-8192",
        ),
        (
            "service",
            {"cpu": 256, "memoryMib": 1536},
            "service.memoryMib=1536 is not a Fargate size for cpu=256: allowed 512, 1024 or 2048",
        ),
    ],
)
def test_invalid_values_are_rejected_with_the_key(
    key: str, changes: dict[str, object], message: str
) -> None:
    """An out-of-range or inconsistent value stops the program with a message naming the key."""
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("<=", "<=")):
        run_offline("staging", _with("staging", key, **changes))


@pytest.mark.parametrize(
    ("key", "changes"),
    [
        ("database", {"performanceInsightsRetentionDays": 7}),
        ("database", {"performanceInsightsRetentionDays": 62}),
        ("database", {"performanceInsightsRetentionDays": 731}),
        ("database", {"monitoringIntervalSeconds": 1}),
        ("service", {"cpu": 256, "memoryMib": 2048}),
        ("service", {"cpu": 2048, "memoryMib": 16384}),
        ("service", {"cpu": 4096, "memoryMib": 30720}),
    ],
)
def test_values_aws_accepts_pass_validation(key: str, changes: dict[str, object]) -> None:
    """Edge values that RDS and Fargate accept are not refused."""
    assert run_offline("staging", _with("staging", key, **changes)).resources


def test_stack_files_hold_every_per_stack_choice() -> None:
    """Both stack files set sizes, retention, Multi-AZ, AZ count, e-mails, domain and counts."""
    for stack in ("staging", "prod"):
        config = stack_config(stack)
        for key in (
            "network",
            "domain",
            "database",
            "cache",
            "service",
            "alerts",
            "archive",
            "canary",
        ):
            assert f"cortiware:{key}" in config
        assert config["cortiware:appEnv"] in {"staging", "production"}
