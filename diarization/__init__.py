"""The diarization stage of the pipeline: a NATS consumer that labels transcribed jobs with their speakers.

`diarizer` is the algorithm (no I/O); this package is the stage around it, as `worker` is the stage around Whisper:
it consumes `DiarizationMessage`s from the `JETSCRIBE_DIARIZE` stream through the durable consumer `diarizers`,
decodes the job's audio (kept until this stage ends), runs `diarizer.Diarizer` in a thread, writes the labelled
transcript and completes the job exactly as a whisper worker completes one without `diarize`: terminal event (so
webhooks and the events stream see it), audio released. It reuses the whisper worker's fetch, decode, progress and
outcome modules (`jetscribe.stage`), never `worker` itself, so it does not load pywhispercpp
(tests/foundation/test_architecture.py); nothing imports it but `cli`.
"""

from diarization.service import DiarizationWorker

__all__ = ["DiarizationWorker"]
