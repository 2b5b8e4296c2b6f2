"""requests_api: footage requests from case to evidence, owners' answers, notifications, transparency."""
