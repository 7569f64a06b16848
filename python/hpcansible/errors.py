"""User-facing errors: one line, no traceback. UserError is the job-side programs' own, so
that the CLI prints theirs the same way."""

from hpcansible_jobs.errors import ServiceUnreachable, UserError

__all__ = ["ServiceUnreachable", "StepFailed", "UserError"]


class StepFailed(UserError):
    """A session step failed; what already runs keeps running."""

    exit_code = 1
