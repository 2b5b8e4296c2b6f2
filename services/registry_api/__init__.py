"""registry_api: camera owners' registrations, their cameras, agencies and jurisdictions, sharing, imports."""
