"""community_api: anonymous tips to an agency and opt-in area alerts for the people of an area."""
