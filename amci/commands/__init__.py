"""The ``amci`` command groups, one module per part of the platform; ``common`` holds what they share."""
