"""Grouping speaker embeddings by voice, and how many voices there are.

1. Changes: inside a speech region, a point where the voice before differs from the voice after (the mean
   embeddings of `CHANGE_WINDOWS` windows wholly on each side, cosine distance at least `CHANGE_DISTANCE` and the
   largest within one window length) splits the region, so that turns spoken straight after one another, with no
   pause for voice activity detection to find, are not averaged together in step 2.
2. Chunks: the window embeddings of each part are averaged in runs of `CHUNK_WINDOWS` consecutive windows
   (3.2 s of audio), which narrows the spread of one voice's embeddings; a change step 1 missed blurs only the
   chunk that straddles it.
3. Speakers: scikit-learn's `AgglomerativeClustering` (cosine distance, average linkage) on the chunks. Unless the
   count is fixed, it stops merging at cosine distance `SPEAKER_DISTANCE`; a count outside the requested bounds
   is then re-clustered to the nearest bound. A cluster heard in fewer than `MIN_CLUSTER_WINDOWS` windows (a
   straddling chunk, a cough) is folded into the others while the lower bound allows.
4. Windows: each window takes the speaker whose chunk centroid is nearest, which puts a change inside a region
   back at window resolution (`diarizer.timeline`).

`SPEAKER_DISTANCE` was chosen on 12 synthetic conversations of 1–4 espeak-ng voices (23–64 s, the generator of
tests/diarizer): between voices the last merges of chunks are at 0.23–0.45, within one voice at most 0.21, and
every threshold from 0.18 to 0.22 found all 12 counts with 0.0 % of speech on the wrong speaker. On the same set,
spectral clustering with the eigen-gap estimate (Wang et al., ICASSP 2018, through the `spectralcluster` package)
found 8 of 12 counts, and agglomerative clustering of single windows found all 12 only for thresholds 0.24–0.26.
Real recordings spread one voice wider (rooms, microphones, emotion) and can bring two voices closer than espeak's:
expect extra speakers on long, varied recordings and merged look-alike voices, and pass `num_speakers` or
`max_speakers` when they are known.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray
from sklearn.cluster import AgglomerativeClustering

from diarizer.errors import DiarizerError

CHUNK_WINDOWS: Final = 5
OVERLAP_WINDOWS: Final = 4
"""Windows start every 0.4 s and last 1.6 s (`diarizer.timeline`): a window overlaps the next three."""
CHANGE_WINDOWS: Final = 3
CHANGE_DISTANCE: Final = 0.25
"""Cosine distance between the voice before and after a point beyond which it is a speaker change."""
SPEAKER_DISTANCE: Final = 0.2
"""Cosine distance between chunk clusters (average linkage) beyond which they are different voices."""
MAX_CHUNKS: Final = 2000
"""Agglomerative clustering holds the chunks' pairwise distances (n² / 2 floats): past this many chunks (about
5.5 hours of continuous speech) chunks grow longer instead."""
MIN_CLUSTER_WINDOWS: Final = CHUNK_WINDOWS
"""A voice heard in fewer windows (about 3 s of speech) is a fragment of another: a straddling chunk, a cough."""


def cluster_speakers(
    embeddings: NDArray[np.float32],
    regions: NDArray[np.int64],
    bounds: tuple[int, int],
    reliable: NDArray[np.bool_] | None = None,
) -> NDArray[np.int64]:
    """A speaker index (0 … k-1, in no particular order) for each embedding.

    `embeddings`: (n, d) unit vectors in time order; `regions`: (n,) the speech region of each (windows of one
    region are contiguous); `bounds`: (fewest, most) speakers; `reliable`: (n,) False for windows that hear more
    than speech (a region shorter than a window: a lone "Thanks."), which then only take the nearest voice found
    on the others instead of adding one of their own. The count found lies within the bounds as far as the
    windows allow (never more speakers than windows). Raises DiarizerError if scikit-learn fails.
    """
    n = len(embeddings)
    low, high = min(bounds[0], n), min(bounds[1], n)
    if n == 0 or high <= 1:
        return np.zeros(n, dtype=np.int64)
    if reliable is not None and 0 < low <= int(reliable.sum()) < n:
        found = cluster_speakers(embeddings[reliable], regions[reliable], bounds)
        centroids = _centroids(embeddings[reliable].astype(np.float64), found)
        nearest = np.argmax(embeddings.astype(np.float64) @ centroids.T, axis=1)
        nearest[reliable] = found
        return _dense(nearest)
    parts = _split_at_changes(embeddings.astype(np.float64), regions)
    chunk_of, chunks = _chunks(embeddings.astype(np.float64), parts, max(CHUNK_WINDOWS, math.ceil(n / MAX_CHUNKS)))
    if len(chunks) < low:
        # Fewer chunks than the speakers asked for: cluster the windows themselves.
        chunk_of, chunks = np.arange(n), embeddings.astype(np.float64)
    try:
        labels = _agglomerative(chunks, low, high)
    except (ValueError, MemoryError) as exc:
        raise DiarizerError(f"clustering {len(chunks)} chunks of speaker embeddings failed: {exc}") from exc
    if low < high:
        labels = _fold_small_clusters(chunks, labels, low, np.bincount(chunk_of, minlength=len(chunks)))
    centroids = _centroids(chunks, labels)
    nearest = np.argmax(embeddings.astype(np.float64) @ centroids.T, axis=1)
    if len(np.unique(nearest)) < low:
        nearest = labels[chunk_of]
    return _dense(nearest)


def _split_at_changes(embeddings: NDArray[np.float64], regions: NDArray[np.int64]) -> NDArray[np.int64]:
    """The part of each window: its region, cut where the voice changes (a part never spans two regions).

    A change at the start of window b is judged on windows that lie wholly before it (ending at b - OVERLAP) and
    wholly after (from b); the cut goes in the middle of the windows that straddle it.
    """
    n = len(embeddings)
    if n == 0:
        return regions
    cumulative = np.vstack((np.zeros((1, embeddings.shape[1])), np.cumsum(embeddings, axis=0)))
    distance = np.zeros(n)
    for b in range(OVERLAP_WINDOWS + CHANGE_WINDOWS - 1, n - CHANGE_WINDOWS + 1):
        left_end = b - OVERLAP_WINDOWS + 1
        left_start, right_end = left_end - CHANGE_WINDOWS, b + CHANGE_WINDOWS
        if regions[left_start] != regions[right_end - 1]:
            continue
        left, right = _unit(
            np.stack((cumulative[left_end] - cumulative[left_start], cumulative[right_end] - cumulative[b]))
        )
        distance[b] = 1.0 - float(left @ right)
    changes = [
        b
        for b in range(n)
        if distance[b] >= CHANGE_DISTANCE
        and distance[b] == distance[max(0, b - OVERLAP_WINDOWS) : b + OVERLAP_WINDOWS + 1].max()
    ]
    cut = np.zeros(n, dtype=np.int64)
    cut[[b - OVERLAP_WINDOWS // 2 for b in changes]] = 1
    region_starts = np.concatenate(([0], (regions[1:] != regions[:-1]).astype(np.int64)))
    return np.cumsum(np.maximum(cut, region_starts))


def _chunks(
    embeddings: NDArray[np.float64], regions: NDArray[np.int64], size: int
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """(the chunk of each window, the chunks' unit mean embeddings); a chunk never spans two regions."""
    index = np.arange(len(regions))
    region_starts = np.concatenate(([True], regions[1:] != regions[:-1]))
    position = index - np.maximum.accumulate(np.where(region_starts, index, 0))
    chunk_of = np.cumsum(region_starts | (position % size == 0)) - 1
    sums = np.zeros((int(chunk_of[-1]) + 1, embeddings.shape[1]))
    np.add.at(sums, chunk_of, embeddings)
    return chunk_of, _unit(sums)


def _agglomerative(chunks: NDArray[np.float64], low: int, high: int) -> NDArray[np.int64]:
    if len(chunks) == 1:
        return np.zeros(1, dtype=np.int64)
    if low == high:
        return _fit(chunks, n_clusters=low)
    labels = _fit(chunks, n_clusters=None, distance_threshold=SPEAKER_DISTANCE)
    found = len(np.unique(labels))
    if not low <= found <= high:
        labels = _fit(chunks, n_clusters=min(max(found, low), high))
    return labels


def _fit(chunks: NDArray[np.float64], **params: float | int | None) -> NDArray[np.int64]:
    model = AgglomerativeClustering(metric="cosine", linkage="average", **params)
    return np.asarray(model.fit_predict(chunks), dtype=np.int64)


def _fold_small_clusters(
    chunks: NDArray[np.float64], labels: NDArray[np.int64], low: int, windows: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Clusters of fewer than MIN_CLUSTER_WINDOWS windows (`windows`: each chunk's count) joined to the nearest
    other cluster, smallest first, while more than `low` clusters remain."""
    labels = labels.copy()
    while True:
        clusters = np.unique(labels)
        sizes = np.array([windows[labels == cluster].sum() for cluster in clusters])
        if len(clusters) <= max(low, 1) or sizes.min() >= MIN_CLUSTER_WINDOWS:
            return labels
        small = clusters[np.argmin(sizes)]
        others = clusters[clusters != small]
        centroids = _centroids(chunks, labels)
        similarity = centroids[np.searchsorted(clusters, others)] @ centroids[np.searchsorted(clusters, small)]
        labels[labels == small] = others[np.argmax(similarity)]


def _centroids(chunks: NDArray[np.float64], labels: NDArray[np.int64]) -> NDArray[np.float64]:
    """Unit mean of each cluster's chunks, rows in the order of `np.unique(labels)`."""
    return _unit(np.stack([chunks[labels == label].mean(axis=0) for label in np.unique(labels)]))


def _unit(vectors: NDArray[np.float64]) -> NDArray[np.float64]:
    norms: NDArray[np.float64] = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _dense(labels: NDArray[np.int64]) -> NDArray[np.int64]:
    """Labels renumbered 0 … k-1."""
    return np.unique(labels, return_inverse=True)[1].astype(np.int64).reshape(-1)
