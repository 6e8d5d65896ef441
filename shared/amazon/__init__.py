"""Clients of the Amazon APIs the platform uses: Login with Amazon, Amazon Marketing Cloud, Amazon Ads and the
Selling Partner API. They share one HTTP layer (``http.py``: retries, time budget, typed errors) and one token
provider (``lwa.py``)."""
