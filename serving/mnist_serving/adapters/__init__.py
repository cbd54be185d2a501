"""Protocol adapters: wire formats in, core calls, wire formats out. Nothing here decides
anything about a request that the core decides; each adapter maps the core's typed errors to
its own status codes once."""
