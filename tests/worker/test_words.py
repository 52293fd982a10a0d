"""Whisper's BPE tokens become words: merged, ordered and kept inside their segment."""

from __future__ import annotations

from schemas import Word
from worker.words import TokenPiece, merge_words


def test_pieces_without_a_leading_space_extend_the_word() -> None:
    pieces = [
        TokenPiece(b" Hel", 10, 20, 0.8),
        TokenPiece(b"lo", 20, 30, 0.6),
        TokenPiece(b" world", 32, 60, 0.9),
        TokenPiece(b".", 60, 61, 0.5),
    ]

    words = merge_words(pieces, 0.1, 0.7)

    assert words == [Word(0.1, 0.3, "Hello", 0.7), Word(0.32, 0.61, "world.", 0.7)]


def test_a_character_split_across_tokens_is_joined_before_decoding() -> None:
    e_acute = "é".encode()
    pieces = [TokenPiece(b" caf" + e_acute[:1], 0, 10, 1.0), TokenPiece(e_acute[1:], 10, 20, 1.0)]

    assert [w.word for w in merge_words(pieces, 0.0, 0.2)] == ["café"]


def test_word_times_are_clamped_into_the_segment_and_kept_in_order() -> None:
    pieces = [
        TokenPiece(b" early", 0, 150, 0.9),
        TokenPiece(b" overlap", 120, 180, 0.9),
        TokenPiece(b" late", 300, 420, 0.9),
    ]

    words = merge_words(pieces, 1.0, 4.0)

    assert [(w.start, w.end) for w in words] == [(1.0, 1.5), (1.5, 1.8), (3.0, 4.0)]


def test_whitespace_only_pieces_make_no_word() -> None:
    assert merge_words([TokenPiece(b" ", 0, 10, 0.5)], 0.0, 1.0) == []


def test_unspaced_languages_get_a_word_per_token() -> None:
    pieces = [
        TokenPiece("今日".encode(), 0, 30, 0.9),
        TokenPiece("は".encode(), 30, 40, 0.8),
        TokenPiece("。".encode(), 40, 45, 0.7),
    ]

    words = merge_words(pieces, 0.0, 0.5, spaced=False)

    assert [w.word for w in words] == ["今日", "は", "。"]
    assert [(w.start, w.end) for w in words] == [(0.0, 0.3), (0.3, 0.4), (0.4, 0.45)]


def test_unspaced_pieces_holding_part_of_a_character_join_the_next() -> None:
    sky = "天".encode()
    pieces = [TokenPiece(sky[:2], 0, 10, 1.0), TokenPiece(sky[2:], 10, 20, 1.0), TokenPiece("気".encode(), 20, 30, 1.0)]

    assert [w.word for w in merge_words(pieces, 0.0, 0.3, spaced=False)] == ["天", "気"]
