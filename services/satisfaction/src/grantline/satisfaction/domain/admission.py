"""Run admission: admit a requested run, or hold it until the user connects what is missing.

- ``is_test`` runs skip the check (they are admitted whatever the report says).
- A held ``manual`` or ``api`` run is resumable: it is admitted as soon as a new report is satisfied
  (the just-in-time path). The service must admit it at most once; this module only decides.
- A held ``schedule`` run is not resumable: the scheduler records ``last_status = 'error'`` with the
  message, leaves ``next_run_at`` alone and retries on the next tick. Resuming the held tick as well would
  run the task twice, so ``recheck_held`` never admits it.
- The trigger is carried in every outcome so the reply tells the runner which of these applies.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from grantline.satisfaction.domain.report import RequirementStatus, SatisfactionReport, missing_message

Trigger = Literal["manual", "api", "schedule"]


class RunRequest(BaseModel):
    """The parts of ``runs.requested`` admission depends on."""

    model_config = ConfigDict(frozen=True)

    trigger: Trigger
    is_test: bool = False


class Admit(BaseModel):
    """Run now; ``check_skipped`` when a test run bypassed an unsatisfied report."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["admit"] = "admit"
    trigger: Trigger
    report: SatisfactionReport
    check_skipped: bool = False

    @property
    def http_status(self) -> int:
        """The status ``POST /v1/satisfaction/check`` answers with."""
        return 200


class Hold(BaseModel):
    """Do not run yet: ``missing`` lists the required, unsatisfied requirements; ``message`` names them."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["hold"] = "hold"
    trigger: Trigger
    report: SatisfactionReport
    missing: list[RequirementStatus]
    message: str

    @property
    def resumable(self) -> bool:
        """Whether a later grant admits this run; scheduled ticks are retried by the scheduler instead."""
        return self.trigger != "schedule"

    @property
    def http_status(self) -> int:
        """The status ``POST /v1/satisfaction/check`` answers with (422 lists the missing requirements)."""
        return 422


def decide_admission(request: RunRequest, report: SatisfactionReport) -> Admit | Hold:
    """Admit a run whose required connections are satisfied (or that is a test run), else hold it."""
    if report.is_satisfied:
        return Admit(trigger=request.trigger, report=report)
    if request.is_test:
        return Admit(trigger=request.trigger, report=report, check_skipped=True)
    return _hold(request.trigger, report)


def recheck_held(held: Hold, report: SatisfactionReport) -> Admit | Hold:
    """For a held run and a fresh report: admit it now, or keep it held with the up-to-date missing list."""
    if held.resumable and report.is_satisfied:
        return Admit(trigger=held.trigger, report=report)
    return _hold(held.trigger, report) if not report.is_satisfied else held


def _hold(trigger: Trigger, report: SatisfactionReport) -> Hold:
    return Hold(trigger=trigger, report=report, missing=report.missing, message=missing_message(report))
