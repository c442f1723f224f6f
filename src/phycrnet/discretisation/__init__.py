"""discretisation."""
