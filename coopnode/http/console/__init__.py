"""The staff console's room (issue 13): its parts are sub-packages, each with its routes."""
