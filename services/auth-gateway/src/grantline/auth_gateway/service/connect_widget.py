"""Where the connect widget (sdk/js) gets a flow's outcome: its opener page, or a redirect back.

The widget names its page when it opens the connect link: ``opener_origin`` (the popup posts the
outcome to that exact origin) or ``return_to`` (popups blocked: the page itself went to the connect
link and is sent back with the outcome in its query). Both are taken from the browser, so they are
believed only when they belong to the tenant's allow-list, checked when the outcome is delivered:
another site that opens the link, or names itself, is given nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from grantline.auth_gateway.adapters import tenant_store
from grantline.auth_gateway.domain.return_to import ReturnToError, check_return_to, registered_origin
from grantline.runtime.db.driver import DriverConnection


@dataclass(frozen=True)
class WidgetDestination:
    mode: Literal["popup", "redirect"]
    # popup: the origin to post to; redirect: the checked URL to send the browser back to.
    target: str


async def widget_destination(
    conn: DriverConnection, tenant_id: str, mode: str, target: str
) -> WidgetDestination | None:
    """The widget's page, if ``target`` is registered for the tenant; None otherwise."""
    tenant = await tenant_store.tenant_by_id(conn, tenant_id)
    if tenant is None or mode not in ("popup", "redirect"):
        return None
    try:
        if mode == "popup":
            return WidgetDestination("popup", registered_origin(target, tenant.return_to_allow_list))
        return WidgetDestination("redirect", check_return_to(target, tenant.return_to_allow_list))
    except ReturnToError:
        return None
