"""The distributed profile: services and the cluster demo (deploy/ holds their configuration)."""
