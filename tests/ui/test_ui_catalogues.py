"""The translation catalogues: the template is up to date with the sources and Russian is complete."""

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from grantline.auth_gateway.entrypoints.ui import languages

SERVICE = Path(languages.__file__).resolve().parents[5]
POT = languages.LOCALE_DIR / "messages.pot"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _msgids(messages) -> set[str]:
    return {m if isinstance(m, str) else m[0] for m in messages}


def test_the_template_holds_exactly_the_messages_marked_in_the_sources():
    with (SERVICE / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {**DEFAULT_KEYWORDS, "lazy_gettext": None}
    found = {
        message
        for _, _, message, _, _ in extract_from_dir(SERVICE, method_map, options_map, keywords=keywords)
    }
    with POT.open("rb") as pot:
        template = read_po(pot)
    assert _msgids(found) == {m.id if isinstance(m.id, str) else m.id[0] for m in template if m.id}, (
        "run the pybabel extract/update commands in docs/admin-ui.md"
    )


@pytest.mark.parametrize(
    "language", [code for code in languages.LANGUAGES if code != languages.SOURCE_LANGUAGE]
)
def test_every_message_is_translated_with_the_same_placeholders(language):
    with POT.open("rb") as pot:
        template = read_po(pot)
    with (languages.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=language)
    translated = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalog if m.id}
    for source in template:
        if not source.id:
            continue
        key = source.id if isinstance(source.id, str) else source.id[0]
        message = translated.get(key)
        assert message is not None, f"{language}: {key!r} is missing"
        assert not message.fuzzy, f"{language}: {key!r} is fuzzy"
        ids = [source.id] if isinstance(source.id, str) else list(source.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        if not isinstance(source.id, str):
            assert len(strings) == catalog.num_plurals, f"{language}: {key!r} needs every plural form"
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            assert string, f"{language}: {key!r} is not translated"
            assert set(PLACEHOLDER.findall(string)) == wanted, f"{language}: {key!r} placeholders differ"
    assert not catalog.obsolete


def test_russian_plurals_take_three_forms():
    translations = languages.translations("ru")
    forms = [
        translations.ngettext("%(num)d provider", "%(num)d providers", n) % {"num": n} for n in (1, 3, 5, 21)
    ]
    assert forms == ["1 провайдер", "3 провайдера", "5 провайдеров", "21 провайдер"]


@pytest.mark.parametrize("language", languages.LANGUAGES)
def test_the_language_switch_names_each_language_as_cldr_does(language):
    from babel import Locale

    cldr = Locale.parse(language)
    assert languages.LANGUAGE_NAMES[language] == (cldr.get_display_name(language) or "").capitalize()


@pytest.mark.parametrize(
    "language", [code for code in languages.LANGUAGES if code != languages.SOURCE_LANGUAGE]
)
def test_each_catalogue_states_cldrs_plural_rule(language):
    # The gateway reads a catalogue without CLDR (languages.translations), so its header must carry
    # the rule CLDR would have supplied.
    with (languages.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        from_header = read_po(po)
    with (languages.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        from_cldr = read_po(po, locale=language)
    from_cldr._num_plurals = from_cldr._plural_expr = None  # what CLDR says, not what the header says
    assert from_header.num_plurals == from_cldr.num_plurals
    assert from_header.plural_expr == from_cldr.plural_expr
