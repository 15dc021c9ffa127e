"""`uvctl schema` commands (to be written)."""

COMMANDS: list = []
