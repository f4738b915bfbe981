"""One exception type for problems a user can fix (bad config, bad data, bad file).

Scripts catch it and print its message alone, so users see the culprit named,
never a traceback from deep inside a library.
"""


class LayerscopeError(Exception):
    """A user-facing error whose message names the culprit (file, key, value)."""
