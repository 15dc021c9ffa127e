"""uvctl's built-in plugins: ordinary plugins, registered by module name by the host."""
