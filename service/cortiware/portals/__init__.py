"""The owner, accountant and developer APIs (contract §3 "Owners, accountants, developers")."""

from typing import Any, Final

from cortiware.portals.accountant import AccountantController
from cortiware.portals.developer import DeveloperController
from cortiware.portals.owner import OwnerController

__all__ = ["AccountantController", "DeveloperController", "OwnerController", "route_handlers"]

route_handlers: Final[list[Any]] = [OwnerController, AccountantController, DeveloperController]
