"""The controller ("mastersalt"): nodes, containers, network, DNS, credentials, jobs."""
