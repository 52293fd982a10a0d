"""Hostile audio, built by the tests: small files that decode to hours, and files that make ffmpeg open others."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from jetscribe.ffmpeg import ffmpeg_binary


def _ffmpeg(*args: str | Path) -> None:
    subprocess.run([ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True)


def lying_wav(path: Path, *, hours: float = 10.0) -> Path:
    """A WAV whose header says `hours` of audio at one 8-bit sample per second (36 KB for 10 h).

    Decoded to 16 kHz it becomes 16,000 times larger: 2.3 GB of float32 for 10 h.
    """
    samples = int(hours * 3600)
    data = bytes([128]) * samples
    fmt = struct.pack("<HHIIHH", 1, 1, 1, 1, 1, 8)  # PCM, mono, 1 Hz, 1 byte/s, block 1, 8 bits
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def silent_flac(path: Path, *, seconds: float = 3600.0) -> Path:
    """`seconds` of 16 kHz silence as FLAC: about 650 KB an hour, 230 MB of float32 once decoded."""
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", f"{seconds:g}", "-c:a", "flac", path)
    return path


def understated_mp3(path: Path, work: Path, *, seconds: float = 3600.0) -> Path:
    """An MP3 whose length ffmpeg's probe underestimates about tenfold.

    One second of a 160 kb/s tone, then `seconds` of 8 kb/s silence, joined frame by frame with no
    Xing header: ffmpeg estimates the duration from the first frame's bitrate.
    """
    tone, silence = work / "tone.mp3", work / "silence.mp3"
    _ffmpeg("-f", "lavfi", "-i", "sine=f=440:r=16000:d=1", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "160k",
            "-write_xing", "0", tone)  # fmt: skip
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", f"{seconds:g}", "-c:a", "libmp3lame", "-b:a", "8k",
            "-write_xing", "0", "-id3v2_version", "0", silence)  # fmt: skip
    path.write_bytes(tone.read_bytes() + silence.read_bytes())
    return path


def ffconcat(path: Path, *targets: Path | str) -> Path:
    """An ffconcat script that makes the concat demuxer read `targets` (files or URLs)."""
    lines = ["ffconcat version 1.0", *(f"file '{target}'" for target in targets)]
    path.write_text("\n".join(lines) + "\n")
    return path


def hls_playlist(path: Path, segment_url: str) -> Path:
    """An HLS playlist whose one segment is `segment_url`."""
    path.write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:10.0,\n{segment_url}\n#EXT-X-ENDLIST\n"
    )
    return path


def sdp(path: Path, port: int) -> Path:
    """An SDP description of an RTP audio stream on loopback `port`."""
    path.write_text(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=jetscribe\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    return path
