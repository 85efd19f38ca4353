"""The Datadog dashboard and monitors: parts (widgets, queries), the views of each family
(families.py, kpis.py), their assembly (dashboard.py) and applying them to an account (apply.py)."""
