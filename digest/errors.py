"""Every error digest raises on purpose; ``str(exc)`` is shown to the user as is.

The CLI prints any ``DigestError`` as one ``Error: <message>`` line and exits 1; anything
else escaping is a bug. Each message names what is wrong and what to do about it.

    DigestError
    ├── ConfigError           the configuration file or an environment variable is wrong
    ├── IngestError           a source file cannot be read or holds no article
    ├── StoreError            the database cannot be reached or written
    ├── BusyError             another process holds the lock of this job
    ├── SubscriberError       a subscriber address or list is wrong
    ├── OutputError           outbox/ (a page, a feed, a template's output) cannot be written
    ├── DeliveryError         mail cannot be rendered or handed to the SMTP server
    │   ├── TransientSendError    the server may take it later (4xx, dropped, timed out)
    │   └── PermanentSendError    the server refused it for good (5xx): never retried
    ├── ScheduleError         the scheduler cannot start
    │   └── StoppedError          a run was stopped by shutdown; the next start finishes it
    └── ServeError            ``digest serve`` cannot listen or start
"""


class DigestError(Exception):
    """Base of every error the CLI reports as ``Error: <message>``."""


class ConfigError(DigestError):
    """The configuration file or an environment variable is wrong."""


class IngestError(DigestError):
    """A source file cannot be read or holds no article."""


class StoreError(DigestError):
    """The database cannot be reached or written."""


class BusyError(DigestError):
    """Another process holds the lock of this job (a send, the scheduler)."""


class SubscriberError(DigestError):
    """A subscriber address or list is wrong."""


class OutputError(DigestError):
    """A file of outbox/ (an issue or article page, a feed, the archive) cannot be made."""


class DeliveryError(DigestError):
    """Mail cannot be rendered or handed to the SMTP server."""


class TransientSendError(DeliveryError):
    """The server may take the message later: a 4xx reply, a dropped connection, a timeout."""


class PermanentSendError(DeliveryError):
    """The server refused the message for good (a 5xx reply): never retried."""


class ScheduleError(DigestError):
    """The scheduler cannot start: its job store or its settings are wrong."""


class StoppedError(ScheduleError):
    """A run was stopped by shutdown between two messages; the next start sends the rest."""


class ServeError(DigestError):
    """``digest serve`` cannot listen on its address or its app did not start."""
