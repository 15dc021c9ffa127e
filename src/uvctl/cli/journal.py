"""`uvctl journal` commands (to be written)."""

COMMANDS: list = []
