"""The sandbox provider: a real OAuth 2.0 authorization server with the quirks of real providers.

Clients must be registered before they can authorize (control API `POST /_sandbox/clients`, or
`SandboxState.register_client` in-process); a registered client may restrict its redirect URIs.
"""

from grantline.sandbox.app import create_sandbox_app, serve
from grantline.sandbox.faults import Fault
from grantline.sandbox.profiles import PROFILES, Profile
from grantline.sandbox.state import SandboxState

__all__ = ["PROFILES", "Fault", "Profile", "SandboxState", "create_sandbox_app", "serve"]
