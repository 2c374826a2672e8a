"""Dataset fingerprints: the short `digest` a dataset input carries.

Two clients that log the same data should name it with the same digest, so a run page (or a search
over `mlflow.datasets`) groups them. The fingerprint is an MD5 over a bounded sample (at most
10,000 rows or elements, so hashing never costs more than a fit) plus the full shape, shortened to
the 8 hex characters MLflow shows; pandas' own row hashing makes it stable across processes.
"""

from __future__ import annotations

import hashlib
from typing import Any

#: Rows (or flattened elements) that take part in a digest; the rest only through the shape.
SAMPLE_SIZE = 10_000


def _md5_of(parts: list[Any]) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    for part in parts:
        md5.update(part.tobytes() if hasattr(part, "tobytes") else bytes(part))
    return md5.hexdigest()[:8]


def frame_digest(frame: Any) -> str:
    """Fingerprint of a DataFrame: the row hashes of its numeric and all-string columns, the row
    count and every column name."""
    import numpy as np
    import pandas as pd

    sample = frame.head(SAMPLE_SIZE)
    numeric = sample.select_dtypes(include=[np.number]).columns
    # A numeric column is hashed anyway: only the others are looked at value by value (~0.1 ms each).
    strings = sample.columns[
        [c not in numeric and bool(sample[c].map(lambda v: type(v) is str).all()) for c in sample.columns]
    ]
    # pandas' own Index.union decides the column order (sorted when both kinds are present), so the
    # row hashes come out as MLflow's client computes them.
    hashable = sample[strings.union(numeric)]
    parts: list[Any] = [pd.util.hash_pandas_object(hashable).values, np.int64(len(frame))]
    parts.extend(str(c).encode() for c in frame.columns)
    return _md5_of(parts)


def array_digest(features: Any, targets: Any = None) -> str:
    """Fingerprint of a feature array (or dict of arrays) and optional targets: sampled values + shapes."""
    import numpy as np
    import pandas as pd

    parts: list[Any] = []

    def add(array: Any) -> None:
        flat = np.asarray(array).flatten()[:SAMPLE_SIZE]
        try:
            parts.append(pd.util.hash_array(flat))
        except TypeError:
            parts.append(np.int64(flat.size))
        parts.extend(np.int64(n) for n in np.shape(array))

    for value in features.values() if isinstance(features, dict) else [features]:
        add(value)
    if targets is not None:
        for value in targets.values() if isinstance(targets, dict) else [targets]:
            add(value)
    return _md5_of(parts)
