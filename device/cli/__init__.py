"""One module per `voxhome` command; see device/__main__.py."""
