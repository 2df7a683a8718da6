"""The web sites of the outage service: the public server 27's pages (outage lookup, and in time
registration and remote switching) and the operators' pages, server-rendered with Starlette and
Jinja2, live by server-sent events, with nothing loaded from the internet."""
