"""orchtui's faces: the Textual dashboard, the CLI and the MCP server entry.

The orchestration itself lives in the ``core`` package; this package only imports it.
"""

__version__ = "0.1.0"
