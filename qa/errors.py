"""The few exceptions the library raises; the CLI and the app show their message as one sentence."""


class QAError(Exception):
    """Base class: the message is one clear sentence for the user."""


class SeedsError(QAError):
    """The seeds folder is missing, empty or holds no readable document."""


class DocumentError(QAError):
    """One document could not be read or parsed (it is skipped, the rest is indexed)."""


class IndexMissingError(QAError):
    """No index has been built in the index folder."""


class IndexCorruptError(QAError):
    """The index folder exists but cannot be loaded."""


class IndexMismatchError(QAError):
    """The index was built with another embedding model or an older format."""


class ModelError(QAError):
    """A model cannot be found, converted or loaded."""


class GeneratorError(QAError):
    """The generation backend failed (for example an HTTP endpoint that does not answer)."""


class InputError(QAError):
    """The question (or its history) is empty, too long or malformed."""
