"""Which connection accounts a verified webhook names (matched against `vault.connections.account`)."""

import json
from datetime import UTC, datetime

from grantline.providers.webhooks import github_signature, verify_github_webhook
from grantline.vault.service.webhooks import affected_accounts


def test_github_revocation_names_the_numeric_id_connections_store():
    # Connections keep GitHub's numeric user id (account.id_path: id); the event leads with the login.
    body = json.dumps({"action": "revoked", "sender": {"login": "octocat", "id": 583231}}).encode()
    headers = {
        "X-GitHub-Event": "github_app_authorization",
        "X-GitHub-Delivery": "d-1",
        "X-Hub-Signature-256": github_signature("s", body),
    }
    verified = verify_github_webhook(body, headers, "s", now=datetime.now(UTC))
    assert "583231" in affected_accounts(verified)
    assert "octocat" in affected_accounts(verified)
