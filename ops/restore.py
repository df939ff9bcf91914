"""`make restore STACK=… TIME=…`: restore the database to a point in time, next to the live one.

1. the time must lie in the instance's restore window (its automated backups' earliest
   restorable time up to LatestRestorableTime)
2. `restore-db-instance-to-point-in-time` into `<db>-pitr-<yyyymmddHHMM>` with the source's
   subnet group, security groups, parameter group, class and Multi-AZ, deletion protection on,
   tags copied (the KMS key is the source's: RDS keeps it)
3. wait until it is available and print its endpoint

The live instance is untouched: inspect the restored one (`cortiware db shell` from a task
with `DATABASE_URL` pointed at it) and copy rows back, or switch the stack to it
(runbooks/restore-database.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.stack import Clients, Outputs, ProcedureError, run_command

__all__ = ["Restore", "main"]


@dataclass
class Restore:
    """The procedure for one stack and restore time (None: the latest restorable time)."""

    outputs: Outputs
    clients: Clients
    restore_time: datetime | None
    say: Callable[[str], None] = print
    poll_delay: float = 30

    def run(self) -> str:
        """Every step; returns the restored instance's identifier."""
        rds = self.clients.rds
        source_id = self.outputs.database_identifier
        source = rds.describe_db_instances(DBInstanceIdentifier=source_id)["DBInstances"][0]
        self.check_window(source)
        target = f"{source_id}-pitr-{(self.restore_time or datetime.now(UTC)):%Y%m%d%H%M}"
        when: dict[str, Any] = (
            {"RestoreTime": self.restore_time}
            if self.restore_time
            else {"UseLatestRestorableTime": True}
        )
        rds.restore_db_instance_to_point_in_time(
            SourceDBInstanceIdentifier=source_id,
            TargetDBInstanceIdentifier=target,
            DBInstanceClass=source["DBInstanceClass"],
            DBSubnetGroupName=source["DBSubnetGroup"]["DBSubnetGroupName"],
            VpcSecurityGroupIds=[g["VpcSecurityGroupId"] for g in source["VpcSecurityGroups"]],
            DBParameterGroupName=source["DBParameterGroups"][0]["DBParameterGroupName"],
            MultiAZ=bool(source.get("MultiAZ")),
            PubliclyAccessible=False,
            DeletionProtection=True,
            CopyTagsToSnapshot=True,
            Tags=[{"Key": "RestoredFrom", "Value": source_id}],
            **when,
        )
        rds.get_waiter("db_instance_available").wait(
            DBInstanceIdentifier=target,
            WaiterConfig={"Delay": self.poll_delay, "MaxAttempts": 240},
        )
        restored = rds.describe_db_instances(DBInstanceIdentifier=target)["DBInstances"][0]
        self.say(f"restored {source_id} to {target} at {restored['Endpoint']['Address']}")
        return target

    def check_window(self, source: dict[str, Any]) -> None:
        """ProcedureError unless the restore time lies within the restore window."""
        if self.restore_time is None:
            return
        latest = source.get("LatestRestorableTime")
        backups = self.clients.rds.describe_db_instance_automated_backups(
            DBInstanceIdentifier=source["DBInstanceIdentifier"]
        )["DBInstanceAutomatedBackups"]
        windows = [b["RestoreWindow"]["EarliestTime"] for b in backups if b.get("RestoreWindow")]
        # Without a reported window: no earlier than the instance's creation or the oldest
        # backup its retention keeps.
        retained = datetime.now(UTC) - timedelta(days=int(source.get("BackupRetentionPeriod", 0)))
        created = source.get("InstanceCreateTime")
        earliest = min(windows) if windows else (max(created, retained) if created else None)
        if latest is None or earliest is None:
            raise ProcedureError("the instance has no restore window (automated backups off?)")
        if not earliest <= self.restore_time <= latest:
            raise ProcedureError(
                f"{self.restore_time:%Y-%m-%dT%H:%M:%SZ} is outside the restore window "
                f"{earliest:%Y-%m-%dT%H:%M:%SZ} .. {latest:%Y-%m-%dT%H:%M:%SZ}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ops.restore --stack S (--time ISO | --latest)`; one line on failure."""
    parser = argparse.ArgumentParser(prog="python -m ops.restore", description="PITR restore.")
    parser.add_argument("--stack", required=True)
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--time", help="UTC, e.g. 2026-01-31T09:55:00Z")
    when.add_argument("--latest", action="store_true", help="the latest restorable time")
    parser.add_argument("--outputs", type=Path, help="stack outputs JSON instead of pulumi's")
    parser.add_argument("--region", help="default: the AWS CLI's")
    parser.add_argument("--endpoint-url", help="an AWS API endpoint (moto's server in drills)")
    args = parser.parse_args(argv)
    try:
        restore_time = None
        if args.time:
            try:
                restore_time = datetime.fromisoformat(args.time.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ProcedureError(f"--time {args.time!r} is not an ISO 8601 time") from exc
            if restore_time.tzinfo is None:
                raise ProcedureError("--time needs a zone: end it with Z for UTC")
        Restore(
            outputs=Outputs.load(args.stack, run_command, args.outputs),
            clients=Clients.create(args.region, args.endpoint_url),
            restore_time=restore_time,
        ).run()
    except (ProcedureError, BotoCoreError, ClientError) as exc:
        print(f"restore: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
