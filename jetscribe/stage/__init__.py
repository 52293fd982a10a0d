"""What every stage worker of the pipeline shares — the whisper worker (`worker`) and the diarization worker
(`diarization`): the job error tree, the abort signal, fetching and decoding a job's audio, progress reports, job
outcomes (terminal events, failures, releasing the audio) and the dead-letter handler.

Kept here rather than in `worker` so that a diarization worker never loads pywhispercpp
(tests/foundation/test_architecture.py); the gateway never imports it (it needs numpy and ffmpeg).
"""
