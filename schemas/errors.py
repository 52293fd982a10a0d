"""The one error the wire contract raises.

SchemaError (ValueError)   a message does not match its schema; the message names the field and why
"""


class SchemaError(ValueError):
    """A message does not match its schema; the message says which field and why."""
