"""`uvctl flush` commands (to be written)."""

COMMANDS: list = []
