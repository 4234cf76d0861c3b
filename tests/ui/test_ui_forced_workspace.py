"""The admin UI's provider-app form forces the workspace connection ("everyone uses the workspace
connection"), over real HTTP against the real vault."""

import re

import httpx
from ui_support import API_KEY


async def test_the_provider_app_form_forces_and_lifts_the_workspace_connection(stack):
    async with httpx.AsyncClient(base_url=stack.url) as client:
        signed = await client.post("/admin/sign-in", data={"api_key": API_KEY})
        assert signed.status_code == 303
        form = await client.get("/admin/providers/sandbox/app")
        assert 'name="force_workspace_connection"' in form.text
        assert "Everyone uses the workspace connection" in form.text
        token = re.findall(r'name="csrf_token" value="([^"]+)"', form.text)[-1]
        fields = {"client_id": "ui-tests-client", "client_secret": "", "enabled": "on", "csrf_token": token}
        saved = await client.post(
            "/admin/providers/sandbox/app", data={**fields, "force_workspace_connection": "on"}
        )
        assert saved.status_code == 303, saved.text
        async with stack.api() as api:
            assert (await api.get("/v1/provider-apps/sandbox")).json()["force_workspace_connection"] is True
        listed = await client.get("/admin/providers")
        assert re.search(r'data-label="Workspace fallback">Forced<', listed.text)
        again = await client.get("/admin/providers/sandbox/app")
        assert re.search(
            r'id="force_workspace_connection" name="force_workspace_connection" checked', again.text
        )

        # An unticked box lifts it.
        token = re.findall(r'name="csrf_token" value="([^"]+)"', again.text)[-1]
        lifted = await client.post("/admin/providers/sandbox/app", data={**fields, "csrf_token": token})
        assert lifted.status_code == 303
        async with stack.api() as api:
            assert (await api.get("/v1/provider-apps/sandbox")).json()["force_workspace_connection"] is False
