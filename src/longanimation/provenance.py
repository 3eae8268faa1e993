"""What produced a result: a digest of this package's source, next to the model's weights digest.

Benchmarks that cache or resume key their saved results by it, so a result
colored by other code is never reused as if it were current.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def code_digest() -> str:
    """16 hex digits over every Python source file of the installed ``longanimation`` package."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for file in sorted(package.rglob("*.py")):
        digest.update(file.relative_to(package).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]
