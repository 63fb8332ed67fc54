"""digest: scraped news in, a daily email and RSS/Atom feeds out."""

import logging

__version__ = "0.1.0"

# psycopg logs what it ignores while cleaning up after an error that we report ourselves
# ("error ignored terminating <psycopg.Pipeline …>"); with no handler anywhere, Python's last
# resort would print that raw beside our one Error line. A service's own log still gets it.
logging.getLogger("psycopg").addHandler(logging.NullHandler())
