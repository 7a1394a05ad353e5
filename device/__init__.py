"""voxhome's appliance service: the event flow (pipeline, decisions, tools, cloud) and its CLI."""

__all__: list[str] = []
