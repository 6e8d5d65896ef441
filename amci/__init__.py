"""AMC Insights operator tooling: the ``amci`` command line and what it builds on."""
