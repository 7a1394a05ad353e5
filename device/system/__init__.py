"""The appliance around the speaker: install, doctor, sd_notify, journal logs, telemetry."""
