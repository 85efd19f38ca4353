"""Generated assets: what a monitoring system needs to show and alert on the catalog.

datadog/ builds the Datadog dashboard and monitors (and applies them through the API);
each is generated from the families, the SIP catalog's and the user's own.
"""
