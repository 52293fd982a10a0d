"""Languages Whisper knows, by the codes whisper.cpp uses (ISO 639-1, plus `haw` and `yue`)."""

from typing import Final

WHISPER_LANGUAGES: Final = frozenset(
    """en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur
    hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km
    sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha ba jw
    su yue""".split()
)


def check_language(language: str | None) -> None:
    """Raise ValueError with a message a user can act on unless `language` is None or known."""
    if language is not None and language not in WHISPER_LANGUAGES:
        raise ValueError(
            f"language {language!r} is not one Whisper knows: give an ISO 639-1 code such as 'en' or 'de', "
            "or leave it out for auto-detection"
        )
