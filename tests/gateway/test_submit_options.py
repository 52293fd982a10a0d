"""Every decoding option of the job message over HTTP: as form fields, or typed in a JSON body with `audio_url`;
each checked by the job message's own rules, a value out of range a 422 naming the option."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from nats.js import JetStreamContext

from gateway.options import NAMES
from schemas import DecodeOptions, names
from schemas.codec import decode_job_message
from tests.gateway.conftest import StartGateway, audio_form

URL = "http://127.0.0.1:9/talk.mp3"


MULTILINGUAL = "base"
"""A declared multilingual model (tests/conftest.py): the default, tiny.en, refuses jobs in other languages."""


async def _published_options(js: JetStreamContext, model: str = "tiny.en") -> DecodeOptions:
    msg = await js.get_last_msg(names.JOBS_STREAM, names.model_jobs_subject(model))
    return decode_job_message(msg.data).options


async def _post(http: aiohttp.ClientSession, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    async with http.post("/jobs", **kwargs) as response:
        return response.status, await response.json()


async def test_every_option_of_the_job_message_is_a_form_field(
    http: aiohttp.ClientSession, js: JetStreamContext
) -> None:
    fields = {
        "beam_size": "3", "temperature": "0.2", "initial_prompt": "Anna, Bob", "word_timestamps": "false",
        "vad": "false", "vad_threshold": "0.4", "vad_min_speech_ms": "100", "vad_min_silence_ms": "800",
        "vad_speech_pad_ms": "300", "temperature_increment": "0.1", "entropy_threshold": "2.8",
        "logprob_threshold": "-2", "no_speech_threshold": "0.5", "compression_ratio_threshold": "3",
        "suppress_non_speech": "false", "languages": "en, de", "audio_stream": "1", "diarize": "true",
        "num_speakers": "3", "min_speakers": "2", "max_speakers": "4",
    }  # fmt: skip
    assert set(fields) == NAMES, "a new option needs a line here"

    status, body = await _post(http, data=audio_form(model=MULTILINGUAL, **fields))

    assert status == 202, body
    assert await _published_options(js, MULTILINGUAL) == DecodeOptions(
        beam_size=3, temperature=0.2, initial_prompt="Anna, Bob", word_timestamps=False, vad=False,
        vad_threshold=0.4, vad_min_speech_ms=100, vad_min_silence_ms=800, vad_speech_pad_ms=300,
        temperature_increment=0.1, entropy_threshold=2.8, logprob_threshold=-2.0, no_speech_threshold=0.5,
        compression_ratio_threshold=3.0, suppress_non_speech=False, languages=("en", "de"), audio_stream=1,
        diarize=True, num_speakers=3, min_speakers=2, max_speakers=4,
    )  # fmt: skip


async def test_empty_option_fields_mean_the_defaults(http: aiohttp.ClientSession, js: JetStreamContext) -> None:
    status, _ = await _post(http, data=audio_form(beam_size="", vad="", languages=""))

    assert status == 202
    assert await _published_options(js) == DecodeOptions()


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("beam_size", "17", "<= 16"),
        ("beam_size", "two", "int"),
        ("temperature", "1.5", "<= 1.0"),
        ("vad", "maybe", "bool"),
        ("vad_threshold", "0", ">= 0.01"),
        ("languages", "en,xx", "'xx'"),
        ("audio_stream", "-1", ">= 0"),
        ("num_speakers", "0", ">= 1"),
        ("max_speakers", "33", "<= 32"),
    ],
)
async def test_an_option_out_of_range_is_a_422_naming_it(
    name: str, value: str, says: str, http: aiohttp.ClientSession, js: JetStreamContext
) -> None:
    status, body = await _post(http, data=audio_form(**{name: value}))

    assert status == 422
    assert f"option `{name}`" in body["error"] and says in body["error"], body["error"]


async def test_a_language_outside_the_allowed_languages_is_a_422(http: aiohttp.ClientSession) -> None:
    status, body = await _post(http, data=audio_form(language="fr", languages="en,de", model=MULTILINGUAL))

    assert status == 422
    assert "'fr'" in body["error"] and "languages" in body["error"], body["error"]


async def test_a_json_body_with_audio_url_and_typed_options_is_queued(
    start_gateway: StartGateway, js: JetStreamContext
) -> None:
    _, http = await start_gateway(allow_private_targets=True)
    payload = {"audio_url": URL, "language": "de", "task": "translate", "beam_size": 2, "vad": True,
               "languages": ["de"], "vad_speech_pad_ms": 150, "model": MULTILINGUAL}  # fmt: skip

    status, body = await _post(http, json=payload)

    assert status == 202, body
    msg = await js.get_last_msg(names.JOBS_STREAM, names.model_jobs_subject(MULTILINGUAL))
    message = decode_job_message(msg.data)
    assert (message.audio_url, message.language, message.task) == (URL, "de", "translate")
    assert message.options == DecodeOptions(beam_size=2, vad=True, languages=("de",), vad_speech_pad_ms=150)


async def test_a_json_body_without_audio_url_is_a_400_saying_how(http: aiohttp.ClientSession) -> None:
    status, body = await _post(http, json={"language": "en"})

    assert status == 400
    assert "audio_url" in body["error"]


async def test_a_json_body_with_an_unknown_field_is_a_422_naming_it(start_gateway: StartGateway) -> None:
    _, http = await start_gateway(allow_private_targets=True)

    status, body = await _post(http, json={"audio_url": URL, "beam": 3})

    assert status == 422
    assert "`beam`" in body["error"]


async def test_a_json_option_of_the_wrong_type_is_a_422_naming_it(start_gateway: StartGateway) -> None:
    _, http = await start_gateway(allow_private_targets=True)

    status, body = await _post(http, json={"audio_url": URL, "beam_size": "3"})

    assert status == 422
    assert "option `beam_size`" in body["error"]


async def test_a_malformed_json_body_is_a_400(http: aiohttp.ClientSession) -> None:
    status, body = await _post(http, data=b"{not json", headers={"Content-Type": "application/json"})

    assert status == 400
    assert "JSON" in body["error"]


async def test_openapi_documents_every_option_with_its_range(http: aiohttp.ClientSession) -> None:
    async with http.get("/openapi.json") as response:
        spec = await response.json()
    content = spec["paths"]["/jobs"]["post"]["requestBody"]["content"]
    form = content["multipart/form-data"]["schema"]["properties"]
    typed = content["application/json"]["schema"]["properties"]

    assert NAMES <= set(form) and NAMES <= set(typed)
    assert (form["beam_size"]["minimum"], form["beam_size"]["maximum"]) == (1, 16)
    assert typed["vad_threshold"]["maximum"] == 0.99
    assert all(form[name].get("description") for name in NAMES)


@pytest.mark.parametrize(
    ("fields", "name", "says"),
    [
        ({"num_speakers": "2"}, "num_speakers", "set `diarize` to true"),
        ({"diarize": "true", "min_speakers": "4", "max_speakers": "2"}, "min_speakers", "more than `max_speakers`"),
        ({"diarize": "true", "num_speakers": "5", "max_speakers": "3"}, "num_speakers", "lies outside"),
    ],
)
async def test_speaker_counts_that_contradict_each_other_or_lack_diarize_are_a_422_naming_the_option(
    fields: dict[str, str], name: str, says: str, http: aiohttp.ClientSession
) -> None:
    status, body = await _post(http, data=audio_form(**fields))

    assert status == 422
    assert f"option `{name}`" in body["error"] and says in body["error"], body["error"]
