"""Configuration (F13): one YAML file, validated at start, with errors that name line and field."""
