"""User-facing errors.

Anything a user can cause (a missing file, an unknown preset, a bad weights file) raises
`NstbenchError`; the CLI prints its message on one line and exits with status 2, without a
traceback. Programming errors stay ordinary exceptions so they keep their tracebacks.
"""


class NstbenchError(Exception):
    """An error caused by the user's input, reported as one line."""


def unknown(kind: str, name: str, valid) -> NstbenchError:
    """Error for an unknown name, listing the valid ones (so the user can fix the call)."""
    valid = sorted(valid)
    shown = ", ".join(valid[:250]) + (f", ... ({len(valid)} in all)" if len(valid) > 250 else "")
    return NstbenchError(f"unknown {kind} {name!r}; valid: {shown}")
