"""The VPC: AZs, subnet tiers, NAT per stack, flow logs and the only world-open rules."""

from __future__ import annotations

import pytest
from infra.components.network import PUBLIC_INGRESS_TAG, subnet_cidrs
from infra.offline import OfflineRun
from infra.policy import rules

from tests.infra.conftest import container, one

pytestmark = pytest.mark.infra

SUBNET = "aws:ec2/subnet:Subnet"


def _subnets(run: OfflineRun, tier: str) -> list[str]:
    return [r.inputs["cidrBlock"] for r in run.of_type(SUBNET) if r.inputs["tags"]["Tier"] == tier]


def test_staging_spans_two_azs_with_one_nat(staging: OfflineRun) -> None:
    """Staging has public, private and isolated subnets in 2 AZs and a single NAT gateway."""
    for tier in ("public", "private", "isolated"):
        assert len(_subnets(staging, tier)) == 2
    assert len(staging.of_type("aws:ec2/natGateway:NatGateway")) == 1
    routes = [
        r.inputs["routes"][0]["natGatewayId"]
        for r in staging.of_type("aws:ec2/routeTable:RouteTable")
        if r.name.startswith("network-private-rt")
    ]
    assert routes == ["network-nat-0-id", "network-nat-0-id"]


def test_prod_spans_three_azs_with_a_nat_per_az(prod: OfflineRun) -> None:
    """Prod has every tier in 3 AZs and a NAT gateway per AZ, each private subnet using its own."""
    for tier in ("public", "private", "isolated"):
        assert len(_subnets(prod, tier)) == 3
    nats = prod.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == 3
    assert {n.inputs["subnetId"] for n in nats} == {f"network-public-{i}-id" for i in range(3)}
    routes = sorted(
        r.inputs["routes"][0]["natGatewayId"]
        for r in prod.of_type("aws:ec2/routeTable:RouteTable")
        if r.name.startswith("network-private-rt")
    )
    assert routes == [f"network-nat-{i}-id" for i in range(3)]


def test_subnets_sit_in_distinct_azs(run: OfflineRun) -> None:
    """Each tier's subnets are spread over distinct availability zones."""
    zones = [
        r.inputs["availabilityZone"]
        for r in run.of_type(SUBNET)
        if r.inputs["tags"]["Tier"] == "private"
    ]
    assert len(set(zones)) == len(zones)


def test_isolated_subnets_have_no_internet_route(run: OfflineRun) -> None:
    """The database and cache subnets' route table has no default route at all."""
    isolated = run.named("network-isolated-rt")
    assert not isolated.inputs.get("routes")


def test_subnet_plan_never_renumbers_when_an_az_is_added() -> None:
    """Adding an AZ only appends subnets; existing CIDRs stay where they are."""
    two, three = subnet_cidrs("10.0.0.0/16", 2), subnet_cidrs("10.0.0.0/16", 3)
    for tier in ("public", "private", "isolated"):
        assert three[tier][:2] == two[tier]


def test_flow_logs_capture_all_traffic_with_retention(run: OfflineRun) -> None:
    """VPC flow logs record all traffic into a log group with the stack's retention."""
    flow_log = one(run, "aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["trafficType"] == "ALL"
    group = run.named("network-flow-logs")
    expected = 30 if run.stack == "staging" else 365
    assert group.inputs["retentionInDays"] == expected


def test_only_the_load_balancer_accepts_the_world_on_80_and_443(run: OfflineRun) -> None:
    """World-open ingress exists only on the LB group, for ports 80 and 443, and nothing else."""
    rules_ = run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    world = [
        r for r in rules_ if r.inputs.get("cidrIpv4") == "0.0.0.0/0" or r.inputs.get("cidrIpv6")
    ]
    assert {
        (r.inputs["securityGroupId"], r.inputs["fromPort"], r.inputs["toPort"]) for r in world
    } == {
        ("network-lb-sg-id", 80, 80),
        ("network-lb-sg-id", 443, 443),
    }
    assert not [
        r for r in run.of_type("aws:ec2/securityGroup:SecurityGroup") if r.inputs.get("ingress")
    ]


def test_tiers_only_reach_the_next_tier(run: OfflineRun) -> None:
    """Ingress follows LB → service → proxy/db and service → Redis, by security group reference."""
    edges = {
        (r.inputs["referencedSecurityGroupId"], r.inputs["securityGroupId"], r.inputs["fromPort"])
        for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs.get("referencedSecurityGroupId")
    }
    assert edges == {
        ("network-lb-sg-id", "network-service-sg-id", 8000),
        ("network-service-sg-id", "network-proxy-sg-id", 5432),
        ("network-proxy-sg-id", "network-db-sg-id", 5432),
        ("network-service-sg-id", "network-db-sg-id", 5432),
        ("network-service-sg-id", "network-cache-sg-id", 6379),
    }


def test_trusted_proxies_are_the_public_subnets(run: OfflineRun) -> None:
    """TRUSTED_PROXIES lists exactly the load balancer's (public) subnet CIDRs."""
    env = {e["name"]: e["value"] for e in container(run, "web")["environment"]}
    assert sorted(env["TRUSTED_PROXIES"].split(",")) == sorted(_subnets(run, "public"))


def test_program_and_policy_agree_on_the_public_ingress_tag() -> None:
    """The tag the program puts on LB rules is the one the policy pack exempts."""
    assert PUBLIC_INGRESS_TAG == rules.PUBLIC_INGRESS_TAG
