"""The lean HTTP/1.1 front end.

``server.HttpServer`` (asyncio Protocol + httptools), ``routes`` (health, metrics), ``types`` (the request and
response handed to the application). Nothing is imported here, so importing the seam stays cheap.
"""
