"""The point-in-time restore procedure drilled against moto's server."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from ops.restore import Restore
from ops.stack import ProcedureError

from tests.ops.conftest import DrillStack


def restore(stack: DrillStack, when: datetime | None) -> str:
    """Run the procedure with drill timings."""
    return Restore(
        outputs=stack.outputs, clients=stack.clients, restore_time=when, say=lambda _: None
    ).run()


def test_restore_lands_next_to_the_source_with_its_network_and_protection(
    drill_stack: DrillStack,
) -> None:
    """The restored instance is new, in the source's subnet group, security groups and
    parameter group, deletion-protected, private and tagged with its source."""
    rds = drill_stack.clients.rds
    source_id = drill_stack.outputs.database_identifier
    source = rds.describe_db_instances(DBInstanceIdentifier=source_id)["DBInstances"][0]
    # A time after the drill instance's creation (its whole restore window is this test's).
    when = source["InstanceCreateTime"] + timedelta(seconds=1)
    time.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds() + 0.5))
    target = restore(drill_stack, when)
    assert target.startswith(f"{source_id}-pitr-")
    restored = rds.describe_db_instances(DBInstanceIdentifier=target)["DBInstances"][0]
    assert restored["DBInstanceStatus"] == "available"
    assert (
        restored["DBSubnetGroup"]["DBSubnetGroupName"]
        == (source["DBSubnetGroup"]["DBSubnetGroupName"])
    )
    assert {g["VpcSecurityGroupId"] for g in restored["VpcSecurityGroups"]} == {
        g["VpcSecurityGroupId"] for g in source["VpcSecurityGroups"]
    }
    assert (
        restored["DBParameterGroups"][0]["DBParameterGroupName"]
        == (source["DBParameterGroups"][0]["DBParameterGroupName"])
    )
    assert restored["DeletionProtection"] is True
    assert restored.get("PubliclyAccessible", False) is False  # moto omits it when false
    tags = rds.list_tags_for_resource(ResourceName=restored["DBInstanceArn"])["TagList"]
    assert {"Key": "RestoredFrom", "Value": source_id} in tags
    # The live instance is untouched.
    after = rds.describe_db_instances(DBInstanceIdentifier=source_id)["DBInstances"][0]
    assert after["DBInstanceStatus"] == "available"


def test_a_time_outside_the_window_is_refused_before_any_restore(
    drill_stack: DrillStack,
) -> None:
    """A time older than the retention (or in the future) stops with the window named."""
    rds = drill_stack.clients.rds
    before = {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}
    for when in (datetime.now(UTC) - timedelta(days=30), datetime.now(UTC) + timedelta(days=1)):
        with pytest.raises(ProcedureError, match="outside the restore window"):
            restore(drill_stack, when)
    after = {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}
    assert after == before
