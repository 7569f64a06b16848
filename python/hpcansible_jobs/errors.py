"""Errors of the job-side programs: one line for the user, no traceback."""


class UserError(Exception):
    """An error the user can fix; printed as one line naming the option, file or key."""

    exit_code = 2


class ServiceUnreachable(UserError):
    """The service does not answer the client (wrong endpoint, refused password, down)."""

    exit_code = 1
