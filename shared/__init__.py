"""Code that the three Canvass services truly share: settings, database access, auth, errors, GeoJSON,
pagination, audit and logging. A module belongs here only when two services use it."""
