"""Login with Amazon: the token endpoint (refresh and authorization-code grants) and the consent page."""
