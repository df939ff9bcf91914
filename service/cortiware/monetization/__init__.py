"""Monetization: the global config, plans, prices and coupons, and the public plan list."""

from cortiware.monetization.catalog import load_config, load_plans
from cortiware.monetization.routes import route_handlers

__all__ = ["load_config", "load_plans", "route_handlers"]
