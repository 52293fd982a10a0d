"""Settings from the environment: kept names, the JETSCRIBE_ prefix, lists, and errors that name the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jetscribe.config import Settings, env_name
from jetscribe.errors import ConfigError


def test_an_empty_environment_gives_the_production_defaults() -> None:
    settings = Settings.from_env({})

    assert settings.port == 8080
    assert settings.log_level == "info"
    assert settings.nats_url is None
    assert settings.replicas == 1
    assert settings.model_dir == Path("data") / "models"


def test_the_variables_of_the_original_service_keep_their_names() -> None:
    settings = Settings.from_env(
        {
            "PORT": "9000",
            "LOG_LEVEL": "debug",
            "DATA_DIR": "/srv/jetscribe",
            "WHISPER_MODEL": "tiny.en",
            "WHISPER_MODEL_PATH": "/models/ggml-tiny.en.bin",
        }
    )

    assert settings.port == 9000
    assert settings.log_level == "debug"
    assert settings.data_dir == Path("/srv/jetscribe")
    assert settings.whisper_model == "tiny.en"
    assert settings.whisper_model_path == Path("/models/ggml-tiny.en.bin")
    assert settings.model_dir == Path("/srv/jetscribe/models")


def test_kept_names_are_not_prefixed() -> None:
    assert [env_name(f) for f in ("port", "log_level", "data_dir", "whisper_model", "whisper_model_path")] == [
        "PORT",
        "LOG_LEVEL",
        "DATA_DIR",
        "WHISPER_MODEL",
        "WHISPER_MODEL_PATH",
    ]
    assert env_name("nats_url") == "JETSCRIBE_NATS_URL"


def test_prefixed_variables_set_the_other_fields() -> None:
    settings = Settings.from_env(
        {
            "JETSCRIBE_NATS_URL": "nats://a:4222,nats://b:4222",
            "JETSCRIBE_REPLICAS": "3",
            "JETSCRIBE_MAX_QUEUED_JOBS": "500",
            "JETSCRIBE_USE_GPU": "false",
            "JETSCRIBE_ACK_WAIT_S": "90.5",
        }
    )

    assert settings.nats_url == "nats://a:4222,nats://b:4222"
    assert settings.replicas == 3
    assert settings.max_queued_jobs == 500
    assert settings.use_gpu is False
    assert settings.ack_wait_s == 90.5


def test_lists_are_comma_separated_and_trimmed() -> None:
    settings = Settings.from_env(
        {"JETSCRIBE_API_KEYS": " key-one, key-two,,key-three ", "JETSCRIBE_WEBHOOK_RETRY_SCHEDULE_S": "0.5,1,2"}
    )

    assert settings.api_keys == ("key-one", "key-two", "key-three")
    assert settings.webhook_retry_schedule_s == (0.5, 1.0, 2.0)


def test_an_empty_variable_counts_as_unset() -> None:
    assert Settings.from_env({"PORT": "", "JETSCRIBE_NATS_URL": ""}) == Settings.from_env({})


def test_overrides_win_over_the_environment() -> None:
    assert Settings.from_env({"PORT": "9000"}, port=7000).port == 7000


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("PORT", "eighty", "expected a whole number"),
        ("PORT", "70000", "expected a whole number from 0 to 65535"),
        ("LOG_LEVEL", "loud", "expected one of 'debug', 'info', 'warning', 'error', 'critical'"),
        ("JETSCRIBE_REPLICAS", "0", "expected a whole number from 1 to 5"),
        ("JETSCRIBE_USE_GPU", "maybe", "expected true or false"),
        ("JETSCRIBE_MAX_UPLOAD_BYTES", "-5", "expected a whole number > 0"),
        ("JETSCRIBE_ACK_WAIT_S", "soon", "expected a number"),
        ("JETSCRIBE_ACK_WAIT_S", "nan", "expected a finite number"),
        ("JETSCRIBE_SHUTDOWN_GRACE_S", "-1", "expected a number >= 0"),
        ("JETSCRIBE_WEBHOOK_RETRY_SCHEDULE_S", "1,soon", "item 2 ('soon'): expected a number"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_reason(variable: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})

    message = str(caught.value)
    assert message.startswith(f"{variable}=")
    assert "is invalid" in message
    assert reason in message


def test_booleans_accept_the_usual_spellings() -> None:
    assert [Settings.from_env({"JETSCRIBE_USE_GPU": v}).use_gpu for v in ("true", "1", "YES", "on")] == [True] * 4
    assert [Settings.from_env({"JETSCRIBE_USE_GPU": v}).use_gpu for v in ("false", "0", "No", "off")] == [False] * 4


def test_a_bad_override_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="override"):
        Settings.from_env({}, port=-1)


def test_a_worker_serves_each_model_whisper_model_names_and_jobs_default_to_the_first() -> None:
    settings = Settings.from_env({"WHISPER_MODEL": " base , tiny.en "})

    assert settings.served_models == ("base", "tiny.en")
    assert settings.job_default_model == "base"


def test_the_default_model_setting_wins_over_the_first_served_model() -> None:
    settings = Settings.from_env({"WHISPER_MODEL": "tiny.en", "JETSCRIBE_DEFAULT_MODEL": "large-v3"})

    assert settings.job_default_model == "large-v3"


def test_a_model_file_serves_the_model_named_after_it() -> None:
    settings = Settings.from_env({"WHISPER_MODEL_PATH": "/models/ggml-base.en-q5_0.bin"})

    assert settings.served_models == ("base.en-q5_0",)


@pytest.mark.parametrize(
    ("environment", "reason"),
    [
        ({"WHISPER_MODEL": " , "}, "WHISPER_MODEL names no model"),
        ({"WHISPER_MODEL": "base,base"}, "WHISPER_MODEL='base,base' names a model more than once"),
        ({"WHISPER_MODEL": "base,tiny.en", "WHISPER_MODEL_PATH": "/m/ggml-x.bin"}, "WHISPER_MODEL_PATH loads one"),
        ({"WHISPER_MODEL": "tiny*"}, "WHISPER_MODEL: model name 'tiny*' cannot be used"),
        ({"JETSCRIBE_DECLARED_MODELS": "base,tiny_.en"}, "JETSCRIBE_DECLARED_MODELS: model name 'tiny_.en'"),
        ({"JETSCRIBE_DEFAULT_MODEL": "a__b"}, "JETSCRIBE_DEFAULT_MODEL: model name 'a__b'"),
        ({"WHISPER_MODEL_PATH": "/m/my model.bin"}, "the model's name is the file's"),
    ],
)
def test_a_model_name_that_cannot_be_routed_stops_the_start_naming_the_variable(
    environment: dict[str, str], reason: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(reason)):
        Settings.from_env(environment)


def test_the_engine_is_chosen_per_model_with_the_setting_as_the_default() -> None:
    settings = Settings.from_env(
        {
            "WHISPER_MODEL": "base,tiny.en",
            "JETSCRIBE_ENGINE": "ctranslate2",
            "JETSCRIBE_MODEL_ENGINES": "tiny.en=whispercpp",
        }
    )

    assert (settings.engine_of("base"), settings.engine_of("tiny.en")) == ("ctranslate2", "whispercpp")


@pytest.mark.parametrize(
    ("environment", "reason"),
    [
        ({"JETSCRIBE_ENGINE": "onnx"}, "JETSCRIBE_ENGINE='onnx' is invalid"),
        ({"JETSCRIBE_MODEL_ENGINES": "base:ctranslate2"}, "'base:ctranslate2' is not NAME=ENGINE"),
        ({"JETSCRIBE_MODEL_ENGINES": "base=tensorrt"}, "'base=tensorrt' is not NAME=ENGINE"),
        ({"JETSCRIBE_COMPUTE_TYPE": "int4"}, "JETSCRIBE_COMPUTE_TYPE='int4' is invalid"),
        ({"JETSCRIBE_BATCH_SIZE": "8"}, "batches the CTranslate2 engine only"),
    ],
)
def test_engine_settings_that_cannot_take_effect_stop_the_start_saying_why(
    environment: dict[str, str], reason: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(reason)):
        Settings.from_env(environment)
