"""The dashboard's panes, one module per area (projects, DAG, queues, resources, runs, logs, details)."""
