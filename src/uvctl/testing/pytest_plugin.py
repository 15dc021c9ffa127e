"""pytest plugin of the conformance kit (to be written)."""
