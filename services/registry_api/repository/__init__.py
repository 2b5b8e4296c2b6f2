"""registry_api's repository: every statement the routes run, one module per aggregate (agencies, registrations,
cameras, sharing, live windows). A route parses, authorises, calls one of these functions and shapes the answer;
the functions run in the caller's session and transaction and never commit."""
