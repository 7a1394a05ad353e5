"""Simulators for the demo and tests: a virtual home on MQTT, a fake realtime cloud."""
