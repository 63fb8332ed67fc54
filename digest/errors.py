"""The exception hierarchy: ``str(exc)`` is shown to the user as is."""


class DigestError(Exception):
    """Base of every error the CLI reports as ``Error: <message>``."""


class ConfigError(DigestError):
    """The configuration file or an environment variable is wrong."""


class IngestError(DigestError):
    """A source file cannot be read or holds no article."""


class StoreError(DigestError):
    """The database cannot be reached or written."""


class DeliveryError(DigestError):
    """Mail cannot be rendered or handed to the SMTP server."""


class SubscriberError(DigestError):
    """A subscriber address or list is wrong."""


class TransientSendError(DeliveryError):
    """The server may take the message later: a 4xx reply, a dropped connection, a timeout."""


class PermanentSendError(DeliveryError):
    """The server refused the message for good (a 5xx reply): never retried."""
