"""What `/v1/runners` takes and returns (never a secret's hash; the secret once, at creation)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from grantline.contract.runner_identities import RunnerInfo


class RunnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200, description="a label for people")


class RunnerView(BaseModel):
    runner_id: str = Field(description="the runner's NATS user name")
    name: str
    tenants: list[str]
    inbox_prefix: str = Field(description="the reply-inbox prefix the runner must connect with")
    created_at: datetime
    revoked_at: datetime | None = None

    @classmethod
    def of(cls, info: RunnerInfo) -> RunnerView:
        return cls(**info.model_dump(exclude={"platform_wide"}))


class RunnerCreatedView(RunnerView):
    secret: str = Field(description="the runner's NATS password; shown only in this response")


class RunnerListView(BaseModel):
    runners: list[RunnerView]
