"""The control room's HTTP API: alerts, their adjudication, the live alert stream and deployment status."""
