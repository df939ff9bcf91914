"""The public HTTPS entry: application load balancer, target group, listeners, certificate,
DNS alias and the access-log bucket."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components._aws import AwsAccount, MovedFrom, child_options, statement, tags
from infra.components.network import APP_PORT
from infra.components.storage import PrivateBucket, PrivateBucketArgs
from infra.config import DomainConfig

__all__ = [
    "ALB_LOG_PREFIX",
    "HEALTH_PATH",
    "READINESS_PATH",
    "TARGET_HEALTH_INTERVAL_SECONDS",
    "TARGET_UNHEALTHY_THRESHOLD",
    "TLS_POLICY",
    "LoadBalancer",
    "LoadBalancerArgs",
]

HEALTH_PATH = "/api/health"
"""The dependency check (503 when the database is unreachable): the canary's, not the ALB's."""
READINESS_PATH = "/api/health/ready"
"""The load balancer's target health check: 200 while the process serves with complete config,
whatever the database does (see ``service/cortiware/health.py``)."""
TARGET_HEALTH_INTERVAL_SECONDS = 30
TARGET_UNHEALTHY_THRESHOLD = 5
"""Failed target checks before a target is unhealthy (150 s of a hung or overloaded task)."""
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
ALB_IDLE_TIMEOUT_SECONDS = 60
"""The balancer closes connections idle this long; the service keeps its own open longer
(`cortiware.cli.KEEP_ALIVE_TIMEOUT`), so it never closes one the balancer may reuse."""
ALB_LOG_PREFIX = "alb"
"""Key prefix of the load balancer's access logs in their bucket."""


@dataclass(frozen=True)
class LoadBalancerArgs:
    """Inputs of :class:`LoadBalancer`."""

    config: DomainConfig
    """The public name and how its certificate is obtained."""
    prefix: str
    """Physical name prefix."""
    stack: str
    """Stack name, for tags."""
    account: AwsAccount
    """Account, for the access-log delivery grant."""
    production: bool
    """Deletion protection on the load balancer."""
    vpc_id: pulumi.Input[str]
    """The VPC of the target group."""
    public_subnet_ids: Sequence[pulumi.Input[str]]
    """Subnets the load balancer listens in."""
    security_group_id: pulumi.Input[str]
    """The load balancer's security group."""
    log_retention_days: int
    """Expiry of the access logs."""
    moved_from: MovedFrom | None = None
    """The component these resources were first declared under (their URNs stay)."""


class LoadBalancer(pulumi.ComponentResource):
    """HTTPS-only ALB forwarding to the web tasks' target group."""

    def __init__(
        self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:LoadBalancer", name, None, opts)
        base, child = child_options(self, name, args.moved_from)
        logs = self._access_log_bucket(base, args)
        self.load_balancer: aws.lb.LoadBalancer = aws.lb.LoadBalancer(
            f"{base}-alb",
            name=f"{args.prefix}-alb",
            load_balancer_type="application",
            internal=False,
            security_groups=[args.security_group_id],
            subnets=list(args.public_subnet_ids),
            drop_invalid_header_fields=True,
            enable_deletion_protection=args.production,
            idle_timeout=ALB_IDLE_TIMEOUT_SECONDS,
            access_logs={"bucket": logs.bucket.bucket, "prefix": ALB_LOG_PREFIX, "enabled": True},
            tags=tags(args.stack, f"{args.prefix}-alb"),
            # ELB checks it may write to the bucket when logging is switched on.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[logs.policy])
            ),
        )
        lb = self.load_balancer
        self.target_group: aws.lb.TargetGroup = aws.lb.TargetGroup(
            f"{base}-web-tg",
            name=f"{args.prefix}-web",
            port=APP_PORT,
            protocol="HTTP",
            target_type="ip",
            vpc_id=args.vpc_id,
            deregistration_delay=30,
            # The readiness path, not /api/health: during a database outage every task is
            # equally unable to reach it, and taking targets out (then ECS replacing them in a
            # loop) would turn 503s from the routes into a site-wide outage and a start-up
            # storm when the database returns. The canary and alarms watch /api/health; a
            # deploy whose tasks cannot reach the database fails `make deploy`'s smoke test.
            health_check={
                "path": READINESS_PATH,
                "matcher": "200",
                "interval": TARGET_HEALTH_INTERVAL_SECONDS,
                "timeout": 5,
                "healthy_threshold": 2,
                "unhealthy_threshold": TARGET_UNHEALTHY_THRESHOLD,
            },
            tags=tags(args.stack, f"{args.prefix}-web"),
            opts=child,
        )
        aws.lb.Listener(
            f"{base}-http",
            load_balancer_arn=lb.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                {
                    "type": "redirect",
                    "redirect": {"port": "443", "protocol": "HTTPS", "status_code": "HTTP_301"},
                }
            ],
            tags=tags(args.stack, f"{args.prefix}-http"),
            opts=child,
        )
        self.https_listener: aws.lb.Listener = aws.lb.Listener(
            f"{base}-https",
            load_balancer_arn=lb.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=self._certificate(base, args, child),
            default_actions=[{"type": "forward", "target_group_arn": self.target_group.arn}],
            tags=tags(args.stack, f"{args.prefix}-https"),
            opts=child,
        )
        if args.config.name is not None:
            self.base_url: pulumi.Output[str] = pulumi.Output.from_input(
                f"https://{args.config.name}"
            )
        else:
            self.base_url = pulumi.Output.concat("https://", lb.dns_name)
        self.register_outputs({"url": self.base_url, "dnsName": lb.dns_name})

    def _access_log_bucket(self, name: str, args: LoadBalancerArgs) -> PrivateBucket:
        """The ALB's access logs: SSE-S3 (the only encryption ELB log delivery supports),
        writable by the region's Elastic Load Balancing account under our prefix only,
        expired after the application log retention."""
        # Regions older than August 2022 (eu-west-1 among them) deliver from a per-region
        # ELB account, not from the `logdelivery.elasticloadbalancing` service principal.
        elb_account = aws.elb.get_service_account_output().arn
        path = f"{ALB_LOG_PREFIX}/AWSLogs/"

        def delivery(bucket_arn: pulumi.Output[str]) -> dict[str, Any]:
            return statement(
                ["s3:PutObject"],
                [pulumi.Output.concat(bucket_arn, "/", path, args.account.account_id, "/*")],
                sid="ElbAccessLogDelivery",
            ) | {"Principal": {"AWS": elb_account}}

        return PrivateBucket(
            f"{name}-alb-logs",
            PrivateBucketArgs(
                bucket_name=pulumi.Output.concat(
                    args.prefix, "-alb-logs-", args.account.account_id
                ),
                label=f"{args.prefix}-alb-logs",
                stack=args.stack,
                kms_key_arn=None,
                versioned=False,
                lifecycle_rules=[
                    {
                        "id": "expire-access-logs",
                        "status": "Enabled",
                        "filter": {"prefix": ""},
                        "expiration": {"days": args.log_retention_days},
                    }
                ],
                allow_statements=[delivery],
            ),
            opts=child_options(self, name, args.moved_from)[1],
        )

    def _certificate(
        self, name: str, args: LoadBalancerArgs, child: pulumi.ResourceOptions
    ) -> pulumi.Input[str]:
        domain = args.config
        if domain.certificate_arn is not None:
            return domain.certificate_arn
        assert domain.name is not None  # config.load() guarantees a name or an ARN
        certificate = aws.acm.Certificate(
            f"{name}-certificate",
            domain_name=domain.name,
            validation_method="DNS",
            tags=tags(args.stack, domain.name),
            opts=child,
        )
        if domain.hosted_zone_id is None:
            # Without a zone the operator adds the validation CNAME by hand (docs/infra.md).
            return certificate.arn
        option = certificate.domain_validation_options[0]
        record = aws.route53.Record(
            f"{name}-certificate-validation-record",
            zone_id=domain.hosted_zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=300,
            allow_overwrite=True,
            opts=child,
        )
        validation = aws.acm.CertificateValidation(
            f"{name}-certificate-validation",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            opts=child,
        )
        aws.route53.Record(
            f"{name}-alias",
            zone_id=domain.hosted_zone_id,
            name=domain.name,
            type="A",
            aliases=[
                {
                    "name": self.load_balancer.dns_name,
                    "zone_id": self.load_balancer.zone_id,
                    "evaluate_target_health": True,
                }
            ],
            opts=child,
        )
        return validation.certificate_arn
