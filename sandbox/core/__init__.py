"""The sandbox core: request/response types, dialect routing, fault injection and the WSGI app."""
