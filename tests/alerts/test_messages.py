"""SMS encoding and segments (plain functions), and which text each channel sends."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from alerts.messages import channel_text, email_subject, sms_size, ucs2_warning

CURLY = "\u2019"  # ’ right single quotation mark, what word processors type for an apostrophe


@pytest.mark.parametrize(
    "text, units, segments",
    [
        ("", 0, 0),
        ("a" * 160, 160, 1),
        ("a" * 161, 161, 2),
        ("a" * 306, 306, 2),
        ("a" * 307, 307, 3),
        ("Température 30 C? Ça chauffe: £5 à Zürich, ¿qué? Ñ @ _ ¥ §", 58, 1),
    ],
)
def test_gsm7_text_has_160_characters_in_one_sms_and_153_per_part(text, units, segments):
    size = sms_size(text)
    assert (size.encoding, size.units, size.segments, size.forcing_ucs2) == ("GSM-7", units, segments, ())
    assert size.per_segment == (160 if segments <= 1 else 153)


@pytest.mark.parametrize("char", ["€", "[", "]", "{", "}", "~", "^", "|", "\\"])
def test_gsm7_extension_characters_count_double(char):
    assert (sms_size(char * 80).units, sms_size(char * 80).segments) == (160, 1)
    assert (sms_size(char * 81).units, sms_size(char * 81).segments) == (162, 2)
    assert sms_size(char).encoding == "GSM-7"


def test_an_escaped_character_is_never_split_between_two_parts():
    text = "a" * 152 + "€" + "a" * 152  # 306 septets would fill two parts exactly, if € could straddle them
    assert (sms_size(text).units, sms_size(text).segments) == (306, 3)


@pytest.mark.parametrize(
    "text, units, segments",
    [(CURLY, 1, 1), ("a" * 69 + CURLY, 70, 1), ("a" * 70 + CURLY, 71, 2), ("a" * 133 + CURLY, 134, 2),
     ("a" * 134 + CURLY, 135, 3), ("😀" * 35, 70, 1), ("😀" * 36, 72, 2)],
)  # fmt: skip
def test_one_character_outside_gsm7_makes_the_whole_sms_ucs2_with_70_and_67(text, units, segments):
    size = sms_size(text)
    assert (size.encoding, size.units, size.segments) == ("UCS-2", units, segments)
    assert size.per_segment == (70 if segments == 1 else 67)


def test_the_warning_names_each_character_that_forces_ucs2_once():
    size = sms_size(f"It{CURLY}s hot{CURLY}, très chaud á")
    assert size.forcing_ucs2 == (CURLY, "á")
    warning = ucs2_warning(size)
    assert warning.startswith("“’” (right single quotation mark), “á” (latin small letter a with acute)")
    assert "70 characters per SMS instead of 160" in warning and "Replace them" in warning
    assert ucs2_warning(sms_size("It's hot")) == ""


def alert(**texts) -> SimpleNamespace:
    values = {"name": "Boiler", "pk": 1, "message": "Hi {{ contact.name }}, {{ alert.name }} needs you.",
              "sms_text": "", "email_subject": "", "email_body": ""}  # fmt: skip
    return SimpleNamespace(**(values | texts))


ADA = SimpleNamespace(name="Ada", phone="+442079460958", email="ada@example.com")


def test_each_channel_sends_its_own_text_or_else_the_message():
    assert channel_text(alert(), contact=ADA, channel="sms") == "Hi Ada, Boiler needs you."
    assert channel_text(alert(), contact=ADA, channel="email") == "Hi Ada, Boiler needs you."
    texts = alert(sms_text="{{ alert.name }}: Ada, now", email_body="Dear {{ contact.name }},\n\nthe boiler.")
    assert channel_text(texts, contact=ADA, channel="sms") == "Boiler: Ada, now"
    assert channel_text(texts, contact=ADA, channel="email") == "Dear Ada,\n\nthe boiler."


def test_the_subject_is_one_line_and_else_the_alerts_name():
    assert email_subject(alert(), contact=ADA) == "Boiler"
    subject = alert(email_subject="[urgent] {{ alert.name }}\n for {{ contact.name }}")
    assert email_subject(subject, contact=ADA) == "[urgent] Boiler for Ada"
    assert email_subject(alert(email_subject="{% if False %}x{% endif %}"), contact=ADA) == "Boiler"


def test_names_and_texts_go_out_as_written_not_html_escaped():
    obrien = SimpleNamespace(name="O'Brien & Sons <ops>", phone="", email="")
    texts = alert(name='Tank "B" > 90%', email_subject="{{ alert.name }} for {{ contact.name }}")
    assert channel_text(texts, contact=obrien, channel="sms") == 'Hi O\'Brien & Sons <ops>, Tank "B" > 90% needs you.'
    assert email_subject(texts, contact=obrien) == 'Tank "B" > 90% for O\'Brien & Sons <ops>'


def test_the_degree_sign_is_not_gsm7():
    # Easy to miss: "30°C" in an alert costs the UCS-2 rate for the whole SMS.
    assert sms_size("above 30°C").forcing_ucs2 == ("°",)
