"""Talking to RS and PA appliances: the API client, report parsing and the session model."""
