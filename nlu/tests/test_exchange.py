"""Examples in and out: each format, bad files, dry runs, duplicates, round trips, the admin."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms import modelform_factory
from django.urls import reverse

from nlu.exceptions import ImportFileInvalid
from nlu.exchange.annotations import annotations_parse, annotations_write
from nlu.exchange.dialogflow import MAX_UNCOMPRESSED_BYTES
from nlu.exchange.formats import Format, file_parse
from nlu.exchange.forms import IntentExampleForm
from nlu.exchange.rows import identifier_from
from nlu.exchange.services import examples_export, examples_import_file
from nlu.models import Intent, IntentExample, ReplyMode

RASA = """version: "3.1"
nlu:
- intent: book_flight
  examples: |
    - fly to [Paris](city)
    - [NYC]{"entity": "city", "value": "New York"} please
    - from [Berlin]{"entity": "city"} to [Rome](city)
- synonym: New York
  examples: |
    - NYC
- regex: zipcode
  examples: |
    - \\d{5}
- lookup: city
  examples: |
    - Paris
- intent: greet
  examples: |
    - hi
    not an example
    - [broken]{"entity": }
responses:
  utter_greet:
  - text: Hello
"""


def import_bytes(data: bytes, filename: str, **kwargs):
    options = {"create_intents": True, "dry_run": False, **kwargs}
    return examples_import_file(data=data, filename=filename, **options)


def examples() -> set[tuple[str, str]]:
    return set(IntentExample.objects.values_list("intent__name", "text"))


def dialogflow_zip(files: dict[str, object]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("agent.json", json.dumps({"language": "en"}))
        for name, content in files.items():
            archive.writestr(name, json.dumps(content, ensure_ascii=False))
    return buffer.getvalue()


def usersays(*phrases: list[dict]) -> list[dict]:
    return [{"id": str(i), "data": parts, "isTemplate": False} for i, parts in enumerate(phrases)]


@pytest.fixture
def greet(db) -> Intent:
    return Intent.objects.create(name="greet", reply_mode=ReplyMode.LLM)


# --- CSV -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_csv_with_or_without_bom(greet, bom):
    # given a CSV with quoting, Chinese, an extra column, an empty and a too long text
    data = (
        bom
        + (
            'text,intent,source\n"hi, there",greet,x\n你好,greet,y\n  ,greet,z\n'
            + "a" * 501
            + ",greet,w\n"
        ).encode()
    )
    # when it is imported
    report = import_bytes(data, "examples.csv")
    # then the good rows are in, the bad ones reported by line
    assert examples() == {("greet", "hi, there"), ("greet", "你好")}
    assert report.added == 2
    assert [(r.line, r.reason) for r in report.invalid] == [
        (4, "the text is empty"),
        (5, "the text is longer than 500 characters (501)"),
    ]


def test_csv_with_semicolons_and_a_multiline_cell_reports_the_right_line(greet):
    data = b'Text;Intent\n"two\nlines";greet\nhello;greet\nh\x00i;greet\n'
    report = import_bytes(data, "x.csv")
    assert examples() == {("greet", "hello")}
    assert [(r.line, r.reason) for r in report.invalid] == [
        (2, "the text spans several lines"),
        (5, "the text contains control characters"),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"sentence,label\nhi,greet\n", 'must name the columns "text" and "intent"'),
        ("text,intent\ncaf\xe9,greet\n".encode("latin-1"), "not UTF-8 text (line 2)"),
        (b'text,intent\n"' + b"x" * 200_000 + b'",greet\n', "cannot be read at line 2"),
        (b"   \n", "The file is empty"),
    ],
)
def test_unreadable_csv_files_are_refused_in_words(db, data, message):
    with pytest.raises(ImportFileInvalid) as exc:
        import_bytes(data, "x.csv")
    assert exc.value.code == "import_file_invalid"
    assert exc.value.status == 400
    assert message in exc.value.message


# --- JSONL -----------------------------------------------------------------------------------


def test_jsonl_ignores_extra_keys_and_reports_bad_lines(greet):
    data = "\n".join(
        [
            json.dumps({"text": "hey", "intent": "greet", "lang": "en", "id": 7}),
            "{not json",
            json.dumps(["hey", "greet"]),
            json.dumps({"text": "yo"}),
            "",
            json.dumps(
                {
                    "text": "Paris!",
                    "intent": "greet",
                    "entities": [{"start": 0, "end": 5, "entity": "city", "value": "Paris"}],
                }
            ),
        ]
    ).encode()
    report = import_bytes(data, "x.jsonl")
    assert examples() == {("greet", "hey"), ("greet", "Paris!")}
    assert IntentExample.objects.get(text="Paris!").entities == [
        {"start": 0, "end": 5, "entity": "city", "value": "Paris"}
    ]
    assert [r.line for r in report.invalid] == [2, 3, 4]


# --- Rasa YAML -------------------------------------------------------------------------------


def test_rasa_yaml_with_entity_annotations(db):
    # when a Rasa 3.1 file is imported
    report = import_bytes(RASA.encode(), "nlu.yml")
    # then the examples are the plain texts, with their entities
    stored = {e.text: e.entities for e in IntentExample.objects.filter(intent__name="book_flight")}
    assert stored == {
        "fly to Paris": [{"start": 7, "end": 12, "entity": "city", "value": "Paris"}],
        "NYC please": [{"start": 0, "end": 3, "entity": "city", "value": "New York"}],
        "from Berlin to Rome": [
            {"start": 5, "end": 11, "entity": "city", "value": "Berlin"},
            {"start": 15, "end": 19, "entity": "city", "value": "Rome"},
        ],
    }
    assert examples() >= {("greet", "hi")}
    # and synonyms, regexes, lookups and other sections are skipped with a note
    assert "1 synonym: entries skipped (only examples are imported)." in report.notes
    assert any("regex" in n for n in report.notes) and any("lookup" in n for n in report.notes)
    assert "Sections skipped (not examples): responses." in report.notes
    # and the bad lines are reported with their line numbers in the file
    assert [(r.line, r.reason) for r in report.invalid] == [
        (20, 'an example line must start with "- "'),
        (21, 'the entity annotation {"entity": } is not valid JSON'),
    ]
    assert report.intents_created == ["book_flight", "greet"]


def test_annotations_parse_and_write_back():
    text, entities = annotations_parse('a [b](x) [c]{"entity": "y", "value": "d"} [e](z:f)')
    assert text == "a b c e"
    assert [(e["entity"], e["value"]) for e in entities] == [("x", "b"), ("y", "d"), ("z", "f")]
    assert annotations_write(text, entities) == (
        'a [b](x) [c]{"entity": "y", "value": "d"} [e]{"entity": "z", "value": "f"}'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nlu:\n- intent: [unclosed\n", "not valid YAML (line"),
        ("stories:\n- story: x\n", 'no "nlu:" list'),
        ("## intent:greet\n- hi\n", "Rasa 1.x Markdown"),
        ("nlu: x\n---\nnlu: y\n", "not valid YAML"),
    ],
)
def test_unreadable_yaml_is_refused(db, text, message):
    with pytest.raises(ImportFileInvalid, match=re.escape(message)):
        import_bytes(text.encode(), "nlu.yml")


def test_yaml_tags_are_never_constructed(db, tmp_path):
    # given a document with a tag that PyYAML's unsafe loader would run
    marker = tmp_path / "pwned"
    text = (
        f'nlu:\n- intent: greet\n  examples: !!python/object/apply:os.system ["touch {marker}"]\n'
    )
    # when it is imported
    import_bytes(text.encode(), "nlu.yaml")
    # then nothing ran: the tagged value is at most read as text
    assert not marker.exists()


# --- Dialogflow ------------------------------------------------------------------------------


def test_dialogflow_agent_export(db):
    # given an agent with an English and a Chinese phrase file and a parameter annotation
    data = dialogflow_zip(
        {
            "intents/Order Pizza.json": {"id": "1", "name": "Order Pizza", "responses": []},
            "intents/Order Pizza_usersays_en.json": usersays(
                [
                    {"text": "I want a ", "userDefined": False},
                    {"text": "large", "alias": "size", "meta": "@size", "userDefined": True},
                    {"text": " pizza", "userDefined": False},
                ],
                [{"text": "pizza please"}],
            ),
            "intents/Order Pizza_usersays_zh-cn.json": usersays([{"text": "我要披萨"}]),
            "intents/Default Fallback Intent.json": {
                "id": "2",
                "name": "Default Fallback Intent",
                "fallbackIntent": True,
            },
            "intents/Default Fallback Intent_usersays_en.json": [
                {
                    "id": "t",
                    "data": [{"text": "@sys.any:any", "meta": "@sys.any"}],
                    "isTemplate": True,
                },
                {"id": "x", "data": "nonsense"},
            ],
        }
    )
    # when it is imported
    report = import_bytes(data, "agent.zip")
    # then the parts are joined, names follow our rules, and renames are reported
    assert examples() == {
        ("order_pizza", "I want a large pizza"),
        ("order_pizza", "pizza please"),
        ("order_pizza", "我要披萨"),
    }
    assert IntentExample.objects.get(text="I want a large pizza").entities == [
        {"start": 9, "end": 14, "entity": "size", "value": "large"}
    ]
    assert report.renamed == {"Order Pizza": "order_pizza"}
    assert Intent.objects.get(name="order_pizza").display_name == "Order Pizza"
    assert "1 template-mode phrases (@entity:alias) skipped." in report.notes
    assert any("fallback intent" in n for n in report.notes)
    assert [(r.where, r.reason) for r in report.invalid] == [
        ("intents/Default Fallback Intent_usersays_en.json, entry 2", "not a training phrase")
    ]


@pytest.mark.parametrize(("languages", "expected"), [(["zh"], {"我要披萨"}), (["en"], {"hi"})])
def test_dialogflow_languages_can_be_picked(db, languages, expected):
    data = dialogflow_zip(
        {
            "intents/Greet.json": {"name": "Greet"},
            "intents/Greet_usersays_en.json": usersays([{"text": "hi"}]),
            "intents/Greet_usersays_zh-hk.json": usersays([{"text": "我要披萨"}]),
        }
    )
    import_bytes(data, "agent.zip", languages=languages)
    assert {t for _, t in examples()} == expected


def test_a_zip_bomb_is_refused_before_it_is_inflated(db):
    # given a tiny zip whose phrase file would inflate past the limit
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("intents/A_usersays_en.json", b" " * (MAX_UNCOMPRESSED_BYTES + 1))
    assert len(buffer.getvalue()) < 100_000
    # when / then
    with pytest.raises(ImportFileInvalid, match="would unpack to more than 20 MB"):
        import_bytes(buffer.getvalue(), "agent.zip")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04 this is no zip", "cannot be read"),
        (dialogflow_zip({"entities/size.json": {}}), "no intents/ folder"),
    ],
)
def test_broken_or_foreign_zips_are_refused(db, data, message):
    with pytest.raises(ImportFileInvalid, match=message):
        import_bytes(data, "agent.zip")


def test_a_zip_with_too_many_files_is_refused(db, settings):
    data = dialogflow_zip({f"intents/x{i}.json": {} for i in range(5001)})
    with pytest.raises(ImportFileInvalid, match="more than 5000 files"):
        import_bytes(data, "agent.zip")


def test_an_unknown_format_is_refused(db):
    with pytest.raises(ImportFileInvalid, match="Could not tell the format"):
        import_bytes(b"just some words", "notes.txt")


@pytest.mark.parametrize(
    ("name", "identifier"),
    [
        ("Order Pizza - yes", "order_pizza_yes"),
        ("faq/ask_name", "faq_ask_name"),
        ("2fa", "intent_2fa"),
        ("Café", "cafe"),
        ("greet", "greet"),
    ],
)
def test_identifier_from(name, identifier):
    assert identifier_from(name) == identifier


def test_a_name_without_latin_letters_gets_a_stable_identifier():
    assert identifier_from("订餐") == identifier_from("订餐")
    assert identifier_from("订餐").startswith("intent_")


# --- the import service ----------------------------------------------------------------------


def test_a_dry_run_reports_but_writes_nothing(db):
    report = import_bytes(b"text,intent\nhi,greet\nyo,greet\n", "x.csv", dry_run=True)
    assert (report.added, report.intents_created, report.dry_run) == (2, ["greet"], True)
    assert not Intent.objects.exists()
    assert not IntentExample.objects.exists()


def test_duplicates_in_the_file_and_in_the_database_are_skipped(greet):
    greet.examples.create(text="hi")
    report = import_bytes(b"text,intent\nhi,greet\n hello ,greet\nhello,greet\n", "x.csv")
    assert (report.added, report.duplicates) == (1, 2)
    assert examples() == {("greet", "hi"), ("greet", "hello")}


def test_unknown_intents_are_skipped_unless_created(greet):
    data = b"text,intent\nhi,greet\nbye,goodbye\nciao,goodbye\n"
    report = import_bytes(data, "x.csv", create_intents=False)
    assert report.unknown_intents == {"goodbye": 2}
    assert examples() == {("greet", "hi")}
    # when they may be created
    report = import_bytes(data, "x.csv")
    # then the new intent waits inactive for staff, with model replies (it has no template)
    goodbye = Intent.objects.get(name="goodbye")
    assert report.intents_created == ["goodbye"]
    assert (goodbye.active, goodbye.reply_mode) == (False, ReplyMode.LLM)


# --- export and round trips ------------------------------------------------------------------


@pytest.fixture
def catalogue(db) -> dict[str, list[tuple[str, list]]]:
    data = {
        "book_flight": [
            ("fly to Paris", [{"start": 7, "end": 12, "entity": "city", "value": "Paris"}]),
            ("NYC please", [{"start": 0, "end": 3, "entity": "city", "value": "New York"}]),
            ('a "quoted", comma', []),
            ("=1+1 is not a formula", []),
            ("- leading dash", []),
            ("订一张去北京的机票", [{"start": 4, "end": 6, "entity": "city", "value": "北京"}]),
        ],
        "greet": [("hi", []), ("[not an annotation]", [])],
    }
    for name, rows in data.items():
        intent = Intent.objects.create(name=name, reply_mode=ReplyMode.LLM)
        for text, entities in rows:
            intent.examples.create(text=text, entities=entities)
    return data


def stored() -> set[tuple[str, str, str]]:
    return {
        (name, text, json.dumps(entities, sort_keys=True))
        for name, text, entities in IntentExample.objects.values_list(
            "intent__name", "text", "entities"
        )
    }


@pytest.mark.parametrize("fmt", [Format.CSV, Format.JSONL, Format.RASA])
def test_export_then_import_gives_the_same_examples(catalogue, fmt):
    # given the examples exported
    before = stored()
    export = examples_export(fmt=fmt)
    # when they are deleted, then imported from the file
    Intent.objects.all().delete()
    report = import_bytes(export.content, export.filename)
    # then the same examples come back (CSV has no entities)
    after = stored()
    if fmt == Format.CSV:
        before = {(n, t, "[]") for n, t, _ in before}
    if fmt == Format.RASA:
        # Rasa has no escape for brackets: a literal "[x]" without (entity) stays as it is.
        pass
    assert after == before
    assert report.invalid == []


def test_csv_export_defuses_formulas(catalogue):
    content = examples_export(fmt=Format.CSV).content.decode()
    assert "\r\n'=1+1 is not a formula,book_flight\r\n" in content
    assert "'- leading dash" in content


def test_rasa_export_writes_entity_annotations(catalogue):
    content = examples_export(fmt=Format.RASA).content.decode()
    assert content.startswith('version: "3.1"\nnlu:\n- intent: book_flight\n  examples: |\n')
    assert "    - fly to [Paris](city)\n" in content
    assert '    - [NYC]{"entity": "city", "value": "New York"} please\n' in content
    assert "    - 订一张去[北京](city)的机票\n" in content


def test_export_of_selected_intents_only(catalogue):
    greet = Intent.objects.get(name="greet")
    lines = examples_export(fmt=Format.JSONL, intent_ids=[greet.pk]).content.decode().splitlines()
    assert [json.loads(line)["intent"] for line in lines] == ["greet", "greet"]


def test_the_file_parser_reads_our_own_jsonl_without_django_rows():
    parsed = file_parse(b'{"text": "hi", "intent": "greet"}\n', filename="upload")
    assert [(r.text, r.intent) for r in parsed.rows] == [("hi", "greet")]


# --- the admin -------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, db):
    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return client


def test_the_intent_list_links_to_the_import(staff_client):
    response = staff_client.get(reverse("admin:nlu_intent_changelist"))
    assert reverse("admin:nlu_intent_import_examples") in response.content.decode()


def test_the_import_view_shows_the_report(staff_client, greet):
    # given a CSV uploaded in the admin
    upload = SimpleUploadedFile("ex.csv", b"text,intent\nhi,greet\n,greet\nbye,goodbye\n")
    # when staff import it without creating intents
    response = staff_client.post(
        reverse("admin:nlu_intent_import_examples"), {"file": upload, "format": ""}
    )
    # then the page reports it and the example is stored
    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["report"].added == 1
    assert "goodbye: 1" in html
    assert "the text is empty" in html
    assert examples() == {("greet", "hi")}


def test_the_import_view_explains_a_bad_file(staff_client):
    upload = SimpleUploadedFile("agent.zip", b"PK\x03\x04 garbage")
    response = staff_client.post(
        reverse("admin:nlu_intent_import_examples"), {"file": upload, "dry_run": "on"}
    )
    assert response.status_code == 200
    assert "This zip file cannot be read" in response.content.decode()


def test_the_import_view_needs_the_add_example_permission(client, db):
    user = get_user_model().objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_intent"))
    client.force_login(user)
    assert client.get(reverse("admin:nlu_intent_import_examples")).status_code == 403
    # and creating intents needs the add intent permission too
    user.user_permissions.add(Permission.objects.get(codename="add_intentexample"))
    upload = SimpleUploadedFile("ex.csv", b"text,intent\nhi,greet\n")
    response = client.post(
        reverse("admin:nlu_intent_import_examples"), {"file": upload, "create_intents": "on"}
    )
    assert "You may not create intents." in response.content.decode()
    assert not Intent.objects.exists()


@pytest.mark.parametrize(
    ("action", "content_type", "first_line"),
    [
        ("export_examples_csv", "text/csv; charset=utf-8", "text,intent"),
        ("export_examples_jsonl", "application/jsonl; charset=utf-8", '{"text": "hi"'),
        ("export_examples_rasa", "application/yaml; charset=utf-8", 'version: "3.1"'),
    ],
)
def test_the_export_actions_download_the_selected_intents(
    staff_client, catalogue, action, content_type, first_line
):
    greet = Intent.objects.get(name="greet")
    response = staff_client.post(
        reverse("admin:nlu_intent_changelist"),
        {"action": action, "_selected_action": [greet.pk]},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"].startswith("attachment; filename=")
    content = response.content.decode()
    assert content.startswith(first_line)
    assert "fly to" not in content


def test_the_example_admin_lists_filters_and_searches(staff_client, catalogue):
    url = reverse("admin:nlu_intentexample_changelist")
    response = staff_client.get(url, {"q": "Paris"})
    assert [e.text for e in response.context["cl"].result_list] == ["fly to Paris"]
    greet = Intent.objects.get(name="greet")
    response = staff_client.get(url, {"intent__id__exact": greet.pk})
    assert response.context["cl"].result_count == 2


def test_entities_must_fit_the_text_in_the_example_form(greet):
    form = IntentExampleForm(
        {"intent": greet.pk, "text": "hi", "entities": '[{"start": 0, "end": 9, "entity": "x"}]'}
    )
    assert "entities" in form.errors


def test_editing_the_text_where_entities_are_hidden_drops_them(greet):
    example = greet.examples.create(
        text="fly to Paris", entities=[{"start": 7, "end": 12, "entity": "city", "value": "Paris"}]
    )
    # as the inline builds it: the entities field is not on the form
    form_class = modelform_factory(IntentExample, form=IntentExampleForm, fields=("intent", "text"))
    form = form_class({"intent": greet.pk, "text": "fly to Rome"}, instance=example)
    assert form.is_valid(), form.errors
    form.save()
    example.refresh_from_db()
    assert example.entities == []
