"""AMC Insights shared library: what every service needs and nothing service-specific.

Vendored into each Chalice app (``services/<app>/vendor/shared``), so it must stay light to import.
"""

__version__ = "0.1.0"
USER_AGENT = f"amc-insights/{__version__}"
