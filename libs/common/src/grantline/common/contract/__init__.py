"""The NATS contract of DESIGN section 3: events, request/reply messages and their subjects.

Every message is a frozen pydantic model. Events carry the envelope (``id``, ``type``, ``version``,
``occurred_at``, ``tenant_id``); request/reply messages are plain frozen models.
"""

from grantline.common.contract.audit import AuditQueryReply, AuditQueryRequest, AuditRecord
from grantline.common.contract.connections import (
    ConnectionExpiring,
    ConnectionGranted,
    ConnectionRevoked,
    ReauthRequired,
    TokenRefreshed,
    WebhookReceived,
)
from grantline.common.contract.envelope import Event, new_event_id, utc_now
from grantline.common.contract.errors import ErrorCode, ErrorDetail, ErrorReply
from grantline.common.contract.registry import (
    ANY_EVENT,
    EVENT_TYPES,
    AnyEvent,
    decode_event,
    encode_message,
    event_subject,
)
from grantline.common.contract.runs import (
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
    "ReauthRequired",
    "RequirementSpec",
    "RequirementStatus",
    "RunAdmitted",
    "RunConnectionRevoked",
    "RunFinished",
    "RunHeld",
    "RunRequested",
    "SkillRequirements",
    "StageRequirements",
    "TokenRefreshed",
    "WebhookReceived",
    "decode_event",
    "encode_message",
    "event_subject",
    "new_event_id",
    "utc_now",
]
