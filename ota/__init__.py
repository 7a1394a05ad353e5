"""Model updates over the air: trust (TUF), download, A/B slots, health-checked switch, rollback."""
