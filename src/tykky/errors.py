"""The one error type the tool reports to users."""


class TykkyError(Exception):
    """A failure explained to the user: a one-paragraph message and an exit code.

    `details` holds the failing tool's own error lines (pip's message, Apptainer's FATAL
    line), shown under the message.
    """

    def __init__(self, message: str, *, details: str = "", exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.exit_code = exit_code

    def __str__(self) -> str:
        if self.details:
            return f"{self.message}\n{self.details}"
        return self.message


class NeedsRebuild(TykkyError):
    """An update step cannot run over the image layers here; the image is rebuilt instead."""
