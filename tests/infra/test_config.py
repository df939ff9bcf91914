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
    ],
)
def test_invalid_values_are_rejected_with_the_key(
    key: str, changes: dict[str, object], message: str
) -> None:
    """An out-of-range or inconsistent value stops the program with a message naming the key."""
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("<=", "<=")):
        run_offline("staging", _with("staging", key, **changes))


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
