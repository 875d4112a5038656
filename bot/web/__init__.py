"""Driving edge (Starlette): the ASGI app uvicorn serves, the OAuth linking pages, health and metrics."""
