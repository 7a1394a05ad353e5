"""The home: MQTT discovery, the device registry, and the tools that act on it."""
