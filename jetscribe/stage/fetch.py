"""Getting a job's audio into a local temp file: from the audio object store, or from an http(s) URL.

Neither path holds the whole audio in memory. Foreign exceptions (nats, aiohttp) become the
worker's own errors here, so a job runner only decides between retry and failure.
"""

from __future__ import annotations

import asyncio
from typing import BinaryIO, Final

import aiohttp
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import ObjectDeletedError, ObjectNotFoundError

from jetscribe.errors import ObjectCorruptError, UnsafeTargetError
from jetscribe.netguard import guarded_connector
from jetscribe.objects import read_object
from jetscribe.stage.errors import AudioMissingError, AudioTooLargeError, PermanentError, RetryableError
from schemas import names

MAX_REDIRECTS: Final = 5
CHUNK_BYTES: Final = 1 << 20


async def fetch_object(js: JetStreamContext, name: str, dest: BinaryIO, *, timeout_s: float) -> int:
    """Stream the audio object `name` into `dest`; returns its size in bytes."""
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            return await read_object(js, names.AUDIO_BUCKET, name, dest)
    except ObjectNotFoundError as exc:
        raise AudioMissingError(f"audio object {name!r} does not exist in bucket {names.AUDIO_BUCKET}") from exc
    except ObjectDeletedError as exc:
        raise AudioMissingError(f"audio object {name!r} was deleted from bucket {names.AUDIO_BUCKET}") from exc
    except ObjectCorruptError as exc:
        # Chunks can lag behind in a cluster that is still catching up: worth another delivery.
        raise RetryableError(f"audio object {name!r} could not be read whole: {exc}") from exc
    except TimeoutError as exc:
        if deadline.expired():
            raise RetryableError(f"reading audio object {name!r} did not finish within {timeout_s:g} s") from exc
        # nats-py's own time-outs are TimeoutErrors too: one request went unanswered, not the whole read.
        raise RetryableError(f"reading audio object {name!r} failed: NATS did not answer in time ({exc!r})") from exc
    except NatsError as exc:
        raise RetryableError(f"reading audio object {name!r} failed: {exc!r}") from exc


class AudioDownloader:
    """Downloads audio URLs with a size limit and a timeout; an async context manager owning its session."""

    def __init__(self, *, max_bytes: int, timeout_s: float, allow_private: bool) -> None:
        self._max_bytes = max_bytes
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(timeout_s, 30.0))
        self._timeout_s = timeout_s
        self._allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AudioDownloader:
        if self._session is not None:
            raise RuntimeError("AudioDownloader is already open")
        self._session = aiohttp.ClientSession(
            connector=guarded_connector(self._allow_private, what="audio_url"), timeout=self._timeout
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def download(self, url: str, dest: BinaryIO) -> int:
        """Write the body at `url` into `dest`; returns its size in bytes."""
        if self._session is None:
            raise RuntimeError("AudioDownloader is not open: use it as `async with`")
        try:
            return await self._get(url, dest)
        except TimeoutError as exc:
            raise RetryableError(f"downloading {url} did not finish within {self._timeout_s:g} s") from exc
        except UnsafeTargetError as exc:
            raise PermanentError(str(exc)) from exc
        except aiohttp.NonHttpUrlRedirectClientError as exc:
            raise PermanentError(f"audio URL {url} redirects to {exc}, which is not an http(s) URL") from exc
        except aiohttp.TooManyRedirects as exc:
            raise PermanentError(f"audio URL {url} redirects more than {MAX_REDIRECTS} times") from exc
        except aiohttp.InvalidURL as exc:
            raise PermanentError(f"audio URL {url} is not a valid URL: {exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise RetryableError(f"downloading {url} failed: {exc}") from exc

    async def _get(self, url: str, dest: BinaryIO) -> int:
        assert self._session is not None
        async with self._session.get(url, max_redirects=MAX_REDIRECTS) as response:
            self._check_status(response)
            return await self._save(url, response, dest)

    @staticmethod
    def _check_status(response: aiohttp.ClientResponse) -> None:
        if response.status < 400:
            return
        what = f"downloading {response.url} failed: HTTP {response.status} {response.reason or ''}".rstrip()
        if response.status in (404, 410):
            raise AudioMissingError(what)
        if response.status in (408, 429) or response.status >= 500:
            raise RetryableError(what)
        raise PermanentError(what)

    async def _save(self, url: str, response: aiohttp.ClientResponse, dest: BinaryIO) -> int:
        declared = response.content_length
        if declared is not None and declared > self._max_bytes:
            raise AudioTooLargeError(
                f"audio at {url} is {declared} bytes, over the {self._max_bytes}-byte limit "
                "(JETSCRIBE_MAX_AUDIO_URL_BYTES)"
            )
        size = 0
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            size += len(chunk)
            if size > self._max_bytes:
                raise AudioTooLargeError(
                    f"audio at {url} exceeds the {self._max_bytes}-byte limit (JETSCRIBE_MAX_AUDIO_URL_BYTES)"
                )
            await asyncio.to_thread(dest.write, chunk)
        return size
