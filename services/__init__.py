"""The three Canvass services. None imports another; they talk over HTTP and the database schema each owns."""
