"""The NATS contract of DESIGN section 3: events, request/reply messages and their subjects.

Every message is a frozen pydantic model. Events carry the envelope (``id``, ``type``, ``version``,
``occurred_at``, ``tenant_id``); request/reply messages are plain frozen models.
"""

from grantline.contract.audit import AuditQueryReply, AuditQueryRequest, AuditRecord
from grantline.contract.connections import (
    ConnectionExpiring,
    ConnectionGranted,
    ConnectionRevoked,
    ProviderEnablementChanged,
    ReauthRequired,
    ScopesMissing,
    SharingChanged,
    TenantProviderDefined,
    TenantProviderRemoved,
    TokenRefreshed,
    WebhookReceived,
)
from grantline.contract.envelope import Event, new_event_id, utc_now
from grantline.contract.errors import ErrorCode, ErrorDetail, ErrorReply
from grantline.contract.registry import (
    ANY_EVENT,
    EVENT_TYPES,
    AnyEvent,
    decode_event,
    encode_message,
    event_subject,
)
from grantline.contract.runs import (
    RequirementSpec,
    RequirementStatus,
    RunAdmitted,
    RunConnectionRevoked,
    RunFinished,
    RunHeld,
    RunRequested,
    SkillRequirements,
    StageRequirements,
)

__all__ = [
    "ANY_EVENT",
    "EVENT_TYPES",
    "AnyEvent",
    "AuditQueryReply",
    "AuditQueryRequest",
    "AuditRecord",
    "ConnectionExpiring",
    "ConnectionGranted",
    "ConnectionRevoked",
    "ErrorCode",
    "ErrorDetail",
    "ErrorReply",
    "Event",
    "ProviderEnablementChanged",
    "ReauthRequired",
    "RequirementSpec",
    "RequirementStatus",
    "RunAdmitted",
    "RunConnectionRevoked",
    "RunFinished",
    "RunHeld",
    "RunRequested",
    "ScopesMissing",
    "SharingChanged",
    "SkillRequirements",
    "StageRequirements",
    "TenantProviderDefined",
    "TenantProviderRemoved",
    "TokenRefreshed",
    "WebhookReceived",
    "decode_event",
    "encode_message",
    "event_subject",
    "new_event_id",
    "utc_now",
]
