"""Generate the AsyncAPI document of the NATS contract from the pydantic models.

``python -m grantline.contract.asyncapi > docs/asyncapi.json``; a test checks that the
checked-in document matches the models.
"""

import json
import sys
from typing import Any

from pydantic import BaseModel

from grantline.contract import (
    audit,
    connect_links,
    notifier,
    runner_identities,
    satisfaction,
    vault,
    vault_admin,
)
from grantline.contract.envelope import TenantScopedEvent, tenant_scoped
from grantline.contract.errors import ErrorReply
from grantline.contract.registry import EVENT_TYPES

# Request/reply subjects: (subject, request, reply, summary).
REQUEST_REPLY: list[tuple[str, type[BaseModel], type[BaseModel], str]] = [
    (
        vault.SUBJECT_RESOLVE,
        vault.ResolveRequest,
        vault.ResolveReply,
        "Resolve the acting user's token at tool-call time, inside the run's grant "
        "(the only reply that carries a token).",
    ),
    (
        vault.SUBJECT_REPORT,
        vault.ReportRequest,
        vault.ResolveReply,
        "Report a resolved token a server refused, inside the run's grant. Kind unauthorized (401): "
        "the first report refreshes the connection once and answers the new token; one after that "
        "checks the connection with the provider and marks a dead one reauth_required. Kind "
        "insufficient_scope: the connection's missing scopes are marked, the reply is missing_scopes.",
    ),
    (
        vault.SUBJECT_EXCHANGE,
        vault.ExchangeRequest,
        vault.ConnectionInfo,
        "Exchange an authorization code for tokens; replies with connection metadata, never tokens.",
    ),
    (vault.SUBJECT_REFRESH, vault.RefreshRequest, vault.RefreshReply, "Refresh a connection's access token."),
    (
        vault.SUBJECT_REVOKE,
        vault.RevokeRequest,
        vault.OkReply,
        "Revoke a connection: delete its secrets, tell the provider, emit connections.revoked.",
    ),
    (
        satisfaction.SUBJECT_CHECK,
        satisfaction.SatisfactionCheckRequest,
        satisfaction.SatisfactionReport,
        "Compute a satisfaction report from the app_user_connect mirror.",
    ),
    (
        satisfaction.SUBJECT_RENEW_GRANT,
        satisfaction.RenewGrantRequest,
        satisfaction.RenewGrantReply,
        "A fresh grant for a run in progress (its current grant proves which run); none once it finished.",
    ),
    (
        connect_links.SUBJECT_CONNECT_LINK,
        connect_links.ConnectLinkRequest,
        connect_links.ConnectLinkReply,
        "A short-lived connect link for one user, scoped to the providers they lack (the gateway "
        "mints it; satisfaction for runs.held, runners on demand).",
    ),
    (
        notifier.SUBJECT_ENDPOINT_CREATE,
        notifier.CreateEndpointRequest,
        notifier.EndpointCreated,
        "Register a tenant's webhook endpoint; the reply carries its signing secret, once.",
    ),
    (
        notifier.SUBJECT_ENDPOINT_LIST,
        notifier.ListEndpointsRequest,
        notifier.EndpointList,
        "A tenant's endpoints.",
    ),
    (
        notifier.SUBJECT_ENDPOINT_DELETE,
        notifier.DeleteEndpointRequest,
        notifier.EndpointDeleted,
        "Remove a tenant's endpoint and its deliveries.",
    ),
    (
        notifier.SUBJECT_DELIVERY_LIST,
        notifier.ListDeliveriesRequest,
        notifier.DeliveryList,
        "A tenant's recent webhook deliveries and their status.",
    ),
    ("audit.query", audit.AuditQueryRequest, audit.AuditQueryReply, "Query the audit ledger."),
    (
        vault_admin.SUBJECT_PROVIDER_APP_PUT,
        vault_admin.PutProviderAppRequest,
        vault_admin.ProviderAppInfo,
        "Create or update a tenant's provider app (secrets are write-only).",
    ),
    (
        vault_admin.SUBJECT_PROVIDER_APP_GET,
        vault_admin.ProviderAppRef,
        vault_admin.ProviderAppInfo,
        "Read a provider app (never its secrets).",
    ),
    (
        vault_admin.SUBJECT_PROVIDER_APP_LIST,
        vault_admin.ProviderAppRef,
        vault_admin.ProviderAppList,
        "List a tenant's provider apps.",
    ),
    (
        vault_admin.SUBJECT_PROVIDER_APP_DELETE,
        vault_admin.ProviderAppDeleteRequest,
        vault_admin.ProviderAppDeleted,
        "Disable a provider app and revoke every connection made with it.",
    ),
    (
        vault_admin.SUBJECT_CONNECTION_API_KEY,
        vault_admin.StoreApiKeyRequest,
        vault.ConnectionInfo,
        "Store an API-key connection.",
    ),
    (
        vault_admin.SUBJECT_CONNECTION_LIST,
        vault_admin.ListConnectionsRequest,
        vault_admin.ConnectionList,
        "List connections (metadata only).",
    ),
    (
        vault_admin.SUBJECT_CONNECTION_GET,
        vault_admin.ConnectionRef,
        vault.ConnectionInfo,
        "Read one connection (metadata only).",
    ),
    (
        vault_admin.SUBJECT_CONNECTION_SET_DEFAULT,
        vault_admin.ConnectionRef,
        vault.ConnectionInfo,
        "Make a connection the owner's default for its provider.",
    ),
    (
        vault_admin.SUBJECT_CONNECTION_REMOVE,
        vault_admin.ConnectionRef,
        vault.ConnectionInfo,
        "Delete a revoked connection for good (conflict unless it is revoked).",
    ),
    (
        vault_admin.SUBJECT_TENANT_PROVIDER_PUT,
        vault_admin.PutTenantProviderRequest,
        vault_admin.TenantProviderInfo,
        "Define or replace a tenant's own provider (validated by the vault, which keeps it).",
    ),
    (
        vault_admin.SUBJECT_TENANT_PROVIDER_GET,
        vault_admin.TenantProviderRef,
        vault_admin.TenantProviderInfo,
        "Read one of a tenant's own provider definitions.",
    ),
    (
        vault_admin.SUBJECT_TENANT_PROVIDER_LIST,
        vault_admin.TenantProviderListRequest,
        vault_admin.TenantProviderList,
        "List a tenant's own provider definitions.",
    ),
    (
        vault_admin.SUBJECT_TENANT_PROVIDER_DELETE,
        vault_admin.TenantProviderRef,
        vault_admin.TenantProviderDeleted,
        "Delete a tenant's own provider definition (connections made with it keep their copy).",
    ),
    (
        vault_admin.SUBJECT_MCP_SERVER_ADD,
        vault_admin.AddMcpServerRequest,
        vault_admin.McpServerInfo,
        "Discover a remote MCP server from its URL, register with its authorization server and keep it"
        " as a tenant provider.",
    ),
    (
        vault_admin.SUBJECT_TENANT_PROVIDER_ENABLE,
        vault_admin.SetProviderEnabledRequest,
        vault_admin.ProviderEnablement,
        "Switch a provider (catalogue or the tenant's own) on or off for one tenant.",
    ),
    (
        vault_admin.SUBJECT_WEBHOOK_VERIFY,
        vault_admin.WebhookVerifyRequest,
        vault_admin.WebhookVerdict,
        "Verify a provider webhook with the secret only the vault holds.",
    ),
    (
        runner_identities.SUBJECT_RUNNERS_CREATE,
        runner_identities.CreateRunnerRequest,
        runner_identities.RunnerCreated,
        "Create a runner identity for one tenant (runner-auth); the reply holds its secret, once.",
    ),
    (
        runner_identities.SUBJECT_RUNNERS_LIST,
        runner_identities.ListRunnersRequest,
        runner_identities.RunnerList,
        "A tenant's own runner identities (runner-auth).",
    ),
    (
        runner_identities.SUBJECT_RUNNERS_REVOKE,
        runner_identities.RevokeRunnerRequest,
        runner_identities.RunnerRevoked,
        "Revoke one of a tenant's runners; its connections are closed within seconds (runner-auth).",
    ),
]

STREAMS = {"connections": "CONNECTIONS", "runs": "RUNS", "audit": "AUDIT"}
# Request subjects that end with the tenant: a runner may use its own tenants' only.
TENANT_SCOPED_REQUESTS = {
    vault.SUBJECT_RESOLVE,
    vault.SUBJECT_REPORT,
    satisfaction.SUBJECT_CHECK,
    satisfaction.SUBJECT_RENEW_GRANT,
    connect_links.SUBJECT_CONNECT_LINK,
}
_TENANT_PARAMETER = {
    "tenant_id": {"description": "the tenant; runners' NATS permissions cover their own tenants only"}
}


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document for every event and request/reply subject."""
    schemas: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for type_name, model in EVENT_TYPES.items():
        subject = "audit.{family}.{verb}" if model is audit.AuditRecord else model.SUBJECT
        scoped = issubclass(model, TenantScopedEvent)
        if issubclass(model, TenantScopedEvent):
            subject = model.subject_for("{tenant_id}")
        channel_id = type_name.replace(".", "_")
        messages[model.__name__] = {
            "name": model.__name__,
            "contentType": "application/json",
            "payload": _schema(model, schemas),
            "headers": {
                "type": "object",
                "properties": {
                    "Nats-Msg-Id": {
                        "type": "string",
                        "description": "the event id; JetStream drops duplicates",
                    },
                    "traceparent": {"type": "string", "description": "W3C trace context"},
                },
            },
        }
        channels[channel_id] = {
            "address": subject,
            "description": f"JetStream stream {STREAMS[subject.split('.')[0]]}",
            "messages": {model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}},
        }
        if scoped:
            channels[channel_id]["parameters"] = _TENANT_PARAMETER
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
        }
    error = _schema(ErrorReply, schemas)
    messages["ErrorReply"] = {"name": "ErrorReply", "contentType": "application/json", "payload": error}
    for subject, request_model, reply_model, summary in REQUEST_REPLY:
        channel_id = subject.replace(".", "_")
        reply_id = f"{channel_id}_reply"
        messages[request_model.__name__] = {
            "name": request_model.__name__,
            "contentType": "application/json",
            "payload": _schema(request_model, schemas),
        }
        messages[reply_model.__name__] = {
            "name": reply_model.__name__,
            "contentType": "application/json",
            "payload": _schema(reply_model, schemas),
        }
        channels[channel_id] = {
            "address": tenant_scoped(subject, "{tenant_id}")
            if subject in TENANT_SCOPED_REQUESTS
            else subject,
            "description": summary,
            "messages": {request_model.__name__: {"$ref": f"#/components/messages/{request_model.__name__}"}},
        }
        if subject in TENANT_SCOPED_REQUESTS:
            channels[channel_id]["parameters"] = _TENANT_PARAMETER
        channels[reply_id] = {
            "address": None,
            "description": f"Reply inbox of {subject}",
            "messages": {
                reply_model.__name__: {"$ref": f"#/components/messages/{reply_model.__name__}"},
                "ErrorReply": {"$ref": "#/components/messages/ErrorReply"},
            },
        }
        operations[f"serve_{channel_id}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": summary,
            "reply": {"channel": {"$ref": f"#/channels/{reply_id}"}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Grantline NATS contract",
            "version": "1",
            "description": "Events on the CONNECTIONS, RUNS and AUDIT JetStream streams and the "
            "request/reply subjects between Grantline services and app runners.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def render() -> str:
    """The document as stable, pretty-printed JSON."""
    return json.dumps(build_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
