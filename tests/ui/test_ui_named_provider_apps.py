"""The admin UI adds, edits and removes a named provider app (a connection's own OAuth client) through
the same use cases as `/v1/provider-apps/{provider}/apps/{name}`, over real HTTP against the real vault."""

import re

import httpx
from ui_support import API_KEY

NAMED_SECRET = "sbx_secret_ui_named_app_canary_0123456789"


def _csrf(page: str) -> str:
    return re.findall(r'name="csrf_token" value="([^"]+)"', page)[-1]


async def test_a_named_app_is_added_listed_and_removed_from_the_providers_page(stack):
    async with httpx.AsyncClient(base_url=stack.url) as client:
        assert (await client.post("/admin/sign-in", data={"api_key": API_KEY})).status_code == 303
        providers = await client.get("/admin/providers")
        assert 'action="/admin/providers/sandbox/named-app"' in providers.text
        bad = await client.get("/admin/providers/sandbox/named-app?name=_platform")
        assert bad.status_code == 303 and bad.headers["location"].endswith("done=bad_app_name")

        to_form = await client.get("/admin/providers/sandbox/named-app?name=shop-b")
        assert to_form.headers["location"] == "/admin/providers/sandbox/apps/shop-b"
        form = await client.get("/admin/providers/sandbox/apps/shop-b")
        assert form.status_code == 200
        assert 'action="/admin/providers/sandbox/apps/shop-b"' in form.text
        assert 'name="allow_workspace_fallback"' not in form.text  # workspace sharing is the default app's
        fields = {"client_id": "shop-b-client", "client_secret": NAMED_SECRET, "enabled": "on"}
        saved = await client.post(
            "/admin/providers/sandbox/apps/shop-b", data={**fields, "csrf_token": _csrf(form.text)}
        )
        assert saved.status_code == 303, saved.text
        async with stack.api() as api:
            named = (await api.get("/v1/provider-apps/sandbox/apps/shop-b")).json()
            assert (named["client_id"], named["has_client_secret"]) == ("shop-b-client", True)
            assert (await api.get("/v1/provider-apps/sandbox")).json()["client_id"] != "shop-b-client"

        listed = await client.get("/admin/providers")
        assert '<td data-label="App"><code>shop-b</code></td>' in listed.text
        assert NAMED_SECRET not in listed.text and NAMED_SECRET not in form.text
        again = await client.get("/admin/providers/sandbox/apps/shop-b")
        assert 'value="shop-b-client"' in again.text and NAMED_SECRET not in again.text

        stale = await client.post("/admin/providers/sandbox/apps/shop-b/remove", data={"csrf_token": "x"})
        assert stale.status_code == 422
        removed = await client.post(
            "/admin/providers/sandbox/apps/shop-b/remove", data={"csrf_token": _csrf(listed.text)}
        )
        assert removed.status_code == 303, removed.text
        async with stack.api() as api:
            assert (await api.get("/v1/provider-apps/sandbox/apps/shop-b")).json()["enabled"] is False
            assert (await api.get("/v1/provider-apps/sandbox")).json()["enabled"] is True


async def test_the_admin_connect_form_starts_a_connection_with_a_named_app(stack):
    async with httpx.AsyncClient(base_url=stack.url) as client:
        assert (await client.post("/admin/sign-in", data={"api_key": API_KEY})).status_code == 303
        form = await client.get("/admin/providers/sandbox/apps/shop-b")
        fields = {"client_id": "shop-b-client", "client_secret": NAMED_SECRET, "enabled": "on"}
        saved = await client.post(
            "/admin/providers/sandbox/apps/shop-b", data={**fields, "csrf_token": _csrf(form.text)}
        )
        assert saved.status_code == 303, saved.text

        new = await client.get("/admin/connections/new", params={"provider": "sandbox"})
        assert '<option value="shop-b">shop-b</option>' in new.text
        data = {"csrf_token": _csrf(new.text), "provider": "sandbox", "owner": "user", "user_id": "alice"}
        started = await client.post("/admin/connections/new", data={**data, "provider_app": "shop-b"})
        assert started.status_code == 303, started.text
        authorize = httpx.URL(started.headers["location"])
        assert authorize.params["client_id"] == "shop-b-client"

        default = await client.post("/admin/connections/new", data=data)
        assert httpx.URL(default.headers["location"]).params["client_id"] != "shop-b-client"
        # Not a name at all, or a name this tenant has no app under: refused, nothing started.
        for name in ("_platform", "shop-zz"):
            refused = await client.post("/admin/connections/new", data={**data, "provider_app": name})
            assert refused.status_code == 422, (name, refused.status_code)
            assert "location" not in refused.headers and NAMED_SECRET not in refused.text
