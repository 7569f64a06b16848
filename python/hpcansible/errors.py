"""User-facing errors: one line, no traceback."""


class UserError(Exception):
    """An error the user can fix; printed as one line naming the file, key or job."""

    exit_code = 2


class StepFailed(UserError):
    """A session step failed; what already runs keeps running."""

    exit_code = 1
