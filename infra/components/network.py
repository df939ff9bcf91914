"""The VPC: public, private and isolated subnets per AZ, NAT, flow logs and security groups.

Traffic is allowed only along load balancer → service → (RDS Proxy →) database and
service → Redis; the load balancer alone accepts the internet, on 80 and 443.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components._aws import AwsAccount, assume_role_policy, policy_document, statement, tags
from infra.components.logs import log_group_prefix
from infra.config import NetworkConfig

__all__ = ["PUBLIC_INGRESS_TAG", "Network", "NetworkArgs", "SecurityGroups"]

APP_PORT = 8000
POSTGRES_PORT = 5432
REDIS_PORT = 6379

PUBLIC_INGRESS_TAG = ("Exposure", "public-load-balancer")
"""Tag on the only rules allowed to accept 0.0.0.0/0 (the policy pack checks it)."""


@dataclass(frozen=True)
class NetworkArgs:
    """Inputs of :class:`Network`."""

    config: NetworkConfig
    """Layout choices of the stack."""
    prefix: str
    """Physical name prefix, e.g. ``cortiware-prod``."""
    stack: str
    """Stack name, for tags."""
    account: AwsAccount
    """Account and region, for ARNs."""
    logs_key_arn: pulumi.Input[str]
    """CMK of the flow-log group (`LogsKey`)."""


@dataclass(frozen=True)
class SecurityGroups:
    """One security group per tier."""

    load_balancer: aws.ec2.SecurityGroup
    service: aws.ec2.SecurityGroup
    proxy: aws.ec2.SecurityGroup
    database: aws.ec2.SecurityGroup
    cache: aws.ec2.SecurityGroup


def _nth(index: int) -> Callable[[list[str]], str]:
    return lambda names: names[index]


def subnet_cidrs(vpc_cidr: str, az_count: int) -> dict[str, list[str]]:
    """Carve the VPC into 16 equal blocks: public, private and isolated tiers, one per AZ each."""
    network = ipaddress.ip_network(vpc_cidr)
    blocks = [str(b) for b in network.subnets(new_prefix=network.prefixlen + 4)]
    # Slots 0-3 public, 4-7 private, 8-11 isolated: adding an AZ later never renumbers a subnet.
    return {
        "public": blocks[0:az_count],
        "private": blocks[4 : 4 + az_count],
        "isolated": blocks[8 : 8 + az_count],
    }


class Network(pulumi.ComponentResource):
    """VPC over ``az_count`` AZs with NAT (shared or per AZ), flow logs and tiered groups."""

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cortiware:infra:Network", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        cidrs = subnet_cidrs(cfg.cidr, cfg.az_count)
        self.public_cidrs: list[str] = cidrs["public"]

        self.vpc: aws.ec2.Vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=cfg.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=tags(args.stack, f"{args.prefix}-vpc"),
            opts=child,
        )
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        )
        az_names = [zones.names.apply(_nth(i)) for i in range(cfg.az_count)]

        def subnets(tier: str) -> list[aws.ec2.Subnet]:
            return [
                aws.ec2.Subnet(
                    f"{name}-{tier}-{i}",
                    vpc_id=self.vpc.id,
                    cidr_block=cidr,
                    availability_zone=az_names[i],
                    map_public_ip_on_launch=False,
                    tags=tags(args.stack, f"{args.prefix}-{tier}-{i}", Tier=tier),
                    opts=child,
                )
                for i, cidr in enumerate(cidrs[tier])
            ]

        public = subnets("public")
        private = subnets("private")
        isolated = subnets("isolated")
        self.public_subnet_ids: list[pulumi.Output[str]] = [s.id for s in public]
        self.private_subnet_ids: list[pulumi.Output[str]] = [s.id for s in private]
        self.isolated_subnet_ids: list[pulumi.Output[str]] = [s.id for s in isolated]

        igw = aws.ec2.InternetGateway(
            f"{name}-igw",
            vpc_id=self.vpc.id,
            tags=tags(args.stack, f"{args.prefix}-igw"),
            opts=child,
        )
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=self.vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags=tags(args.stack, f"{args.prefix}-public"),
            opts=child,
        )
        for i, subnet in enumerate(public):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-rta-{i}",
                subnet_id=subnet.id,
                route_table_id=public_rt.id,
                opts=child,
            )

        nat_count = cfg.az_count if cfg.nat_per_az else 1
        self.nat_gateways: list[aws.ec2.NatGateway] = []
        for i in range(nat_count):
            eip = aws.ec2.Eip(
                f"{name}-nat-eip-{i}",
                domain="vpc",
                tags=tags(args.stack, f"{args.prefix}-nat-{i}"),
                opts=child,
            )
            self.nat_gateways.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{i}",
                    allocation_id=eip.id,
                    subnet_id=public[i].id,
                    tags=tags(args.stack, f"{args.prefix}-nat-{i}"),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
            )
        for i, subnet in enumerate(private):
            # Staging shares one NAT (cheaper; an AZ outage cuts egress); prod has one per AZ.
            nat = self.nat_gateways[i if cfg.nat_per_az else 0]
            rt = aws.ec2.RouteTable(
                f"{name}-private-rt-{i}",
                vpc_id=self.vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
                tags=tags(args.stack, f"{args.prefix}-private-{i}"),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-rta-{i}", subnet_id=subnet.id, route_table_id=rt.id, opts=child
            )
        isolated_rt = aws.ec2.RouteTable(
            f"{name}-isolated-rt",
            vpc_id=self.vpc.id,
            tags=tags(args.stack, f"{args.prefix}-isolated"),
            opts=child,
        )
        for i, subnet in enumerate(isolated):
            aws.ec2.RouteTableAssociation(
                f"{name}-isolated-rta-{i}",
                subnet_id=subnet.id,
                route_table_id=isolated_rt.id,
                opts=child,
            )

        self._flow_logs(name, args, cfg)
        self.security_groups: SecurityGroups = self._security_groups(name, args)
        self.register_outputs(
            {
                "vpcId": self.vpc.id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
                "isolatedSubnetIds": self.isolated_subnet_ids,
            }
        )

    def _flow_logs(self, name: str, args: NetworkArgs, cfg: NetworkConfig) -> None:
        child = pulumi.ResourceOptions(parent=self)
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"{log_group_prefix(args.prefix)}/vpc-flow-logs",
            retention_in_days=cfg.flow_log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=tags(args.stack, f"{args.prefix}-flow-logs"),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            assume_role_policy=assume_role_policy(
                "vpc-flow-logs.amazonaws.com", source_account=args.account.account_id
            ),
            tags=tags(args.stack, f"{args.prefix}-flow-logs"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=role.id,
            policy=policy_document(
                statement(
                    ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    [group.arn, pulumi.Output.concat(group.arn, ":*")],
                    sid="WriteOwnFlowLogGroup",
                ),
                statement(
                    # DescribeLogGroups has no per-group resource; the account's groups are the
                    # narrowest ARN AWS accepts for it.
                    ["logs:DescribeLogGroups"],
                    [args.account.arn("logs", "log-group:*")],
                    sid="DescribeLogGroups",
                ),
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=tags(args.stack, f"{args.prefix}-flow-log"),
            opts=child,
        )

    def _security_groups(self, name: str, args: NetworkArgs) -> SecurityGroups:
        child = pulumi.ResourceOptions(parent=self)

        def group(tier: str, description: str) -> aws.ec2.SecurityGroup:
            # No inline rules: the provider then removes AWS's default allow-all egress, and every
            # permitted flow is one of the explicit rule resources below.
            return aws.ec2.SecurityGroup(
                f"{name}-{tier}-sg",
                vpc_id=self.vpc.id,
                description=description,
                tags=tags(args.stack, f"{args.prefix}-{tier}", Tier=tier),
                opts=child,
            )

        sgs = SecurityGroups(
            load_balancer=group("lb", "Cortiware load balancer: HTTPS from the internet"),
            service=group("service", "Cortiware ECS tasks: from the load balancer only"),
            proxy=group("proxy", "Cortiware RDS Proxy: from the service only"),
            database=group("db", "Cortiware RDS: from the proxy and the migration task"),
            cache=group("cache", "Cortiware Redis: from the service only"),
        )

        def ingress(
            rule: str,
            target: aws.ec2.SecurityGroup,
            port: int,
            *,
            source: aws.ec2.SecurityGroup | None = None,
            world: bool = False,
        ) -> None:
            extra = dict([PUBLIC_INGRESS_TAG]) if world else {}
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{rule}",
                security_group_id=target.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ipv4="0.0.0.0/0" if world else None,
                referenced_security_group_id=None if source is None else source.id,
                description=rule,
                tags=tags(args.stack, f"{args.prefix}-{rule}", **extra),
                opts=child,
            )

        def egress(
            rule: str,
            origin: aws.ec2.SecurityGroup,
            port: int,
            *,
            destination: aws.ec2.SecurityGroup | None = None,
        ) -> None:
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-{rule}",
                security_group_id=origin.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ipv4="0.0.0.0/0" if destination is None else None,
                referenced_security_group_id=None if destination is None else destination.id,
                description=rule,
                tags=tags(args.stack, f"{args.prefix}-{rule}"),
                opts=child,
            )

        ingress("lb-http-from-internet", sgs.load_balancer, 80, world=True)
        ingress("lb-https-from-internet", sgs.load_balancer, 443, world=True)
        egress("lb-to-service", sgs.load_balancer, APP_PORT, destination=sgs.service)
        ingress("service-from-lb", sgs.service, APP_PORT, source=sgs.load_balancer)
        # Stripe, ECR, Secrets Manager, CloudWatch and S3 are reached over HTTPS through NAT.
        egress("service-https-out", sgs.service, 443)
        egress("service-to-proxy", sgs.service, POSTGRES_PORT, destination=sgs.proxy)
        egress("service-to-db", sgs.service, POSTGRES_PORT, destination=sgs.database)
        egress("service-to-cache", sgs.service, REDIS_PORT, destination=sgs.cache)
        ingress("proxy-from-service", sgs.proxy, POSTGRES_PORT, source=sgs.service)
        egress("proxy-to-db", sgs.proxy, POSTGRES_PORT, destination=sgs.database)
        ingress("db-from-proxy", sgs.database, POSTGRES_PORT, source=sgs.proxy)
        # Direct from the service group: the migration task (DATABASE_URL_UNPOOLED) to the
        # primary, and the web tasks' report reads (DATABASE_REPLICA_URL) to the replica, which
        # shares the database group.
        ingress("db-from-service", sgs.database, POSTGRES_PORT, source=sgs.service)
        ingress("cache-from-service", sgs.cache, REDIS_PORT, source=sgs.service)
        return sgs
