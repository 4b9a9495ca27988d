"""The API's routes, one module per subject; each route declares the role it needs."""
