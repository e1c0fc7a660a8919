"""A Django project with no limelight line: what ``limelight run`` instruments."""
