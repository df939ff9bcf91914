"""Tests of the Pulumi program under mocks, the policy pack and the offline plan."""
