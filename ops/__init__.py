"""Operator procedures around `pulumi up`: deploy, roll back, restore, preflight.

Each is a module runnable with `python -m ops.<name>` (and a `make` target). Their AWS calls
go through boto3, so the same code runs against AWS and, in `tests/ops`, against moto's
server; the steps that need Docker or the Pulumi CLI go through an injectable command runner.
"""
