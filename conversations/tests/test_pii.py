"""Personal data at rest: encryption, blind index, masks, the encrypted field, key rotation."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection, models

from conversations import pii
from conversations.fields import EncryptedTextField
from conversations.pii_rotation import encrypted_fields, pii_rotate

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
INDEX_KEY = "i" * 40


@pytest.fixture
def keys(settings):
    settings.PII_ENCRYPTION_KEYS = [OLD_KEY]
    settings.PII_INDEX_KEY = INDEX_KEY
    return settings


@pytest.fixture
def contact_model(transactional_db):
    """A real table with two encrypted columns, made for the test and dropped after it."""

    class Contact(models.Model):
        phone = EncryptedTextField()
        email = EncryptedTextField(null=True)

        class Meta:
            app_label = "conversations"
            db_table = "conversations_test_pii_contact"

        def __str__(self) -> str:
            return f"contact {self.pk}"

    with connection.schema_editor() as editor:
        editor.create_model(Contact)
    yield Contact
    with connection.schema_editor() as editor:
        editor.delete_model(Contact)
    # Unregister it, so later tests (and makemigrations) never see a model without a migration.
    del apps.all_models["conversations"]["contact"]
    apps.clear_cache()


def raw_column(model, column):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {model._meta.db_table} ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def test_encrypt_then_decrypt_gives_the_value_back(keys):
    # given
    value = "北京市朝阳区建国路88号 / 13800138000"
    # when
    token = pii.encrypt(value)
    # then
    assert value not in token
    assert pii.decrypt(token) == value


def test_a_wrong_key_raises_and_never_returns_the_ciphertext(keys):
    # given
    token = pii.encrypt("13800138000")
    keys.PII_ENCRYPTION_KEYS = [NEW_KEY]
    # when / then
    with pytest.raises(pii.PiiDecryptError, match="wrong or missing key"):
        pii.decrypt(token)


def test_garbage_is_not_passed_through_as_a_value(keys):
    with pytest.raises(pii.PiiDecryptError):
        pii.decrypt("13800138000")


def test_production_without_keys_raises_a_key_error(settings):
    # given: what production would have if settings had not refused to start
    settings.PII_ENCRYPTION_KEYS = []
    settings.PII_INDEX_KEY = ""
    settings.PII_DEV_KEY_FILE = None
    # when / then
    with pytest.raises(pii.PiiKeyError, match="must both be set"):
        pii.encrypt("x")


def test_the_old_key_still_decrypts_after_a_new_key_goes_first(keys):
    # given
    token = pii.encrypt("alice@example.com")
    # when
    keys.PII_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    rotated = pii.fernet().rotate(token.encode()).decode()
    # then
    assert pii.decrypt(token) == "alice@example.com"
    assert Fernet(NEW_KEY.encode()).decrypt(rotated.encode()) == b"alice@example.com"
    with pytest.raises(InvalidToken):
        Fernet(NEW_KEY.encode()).decrypt(token.encode())


def test_the_dev_key_file_is_made_once_private_and_reused(settings, tmp_path, caplog):
    # given
    settings.PII_ENCRYPTION_KEYS = []
    settings.PII_INDEX_KEY = ""
    settings.PII_DEV_KEY_FILE = tmp_path / "pii-dev-keys.json"
    # when
    token = pii.encrypt("13800138000")
    first_index = pii.blind_index("13800138000", "phone")
    # then
    assert (settings.PII_DEV_KEY_FILE.stat().st_mode & 0o777) == 0o600
    assert "created development keys" in caplog.text
    assert pii.decrypt(token) == "13800138000"
    assert pii.blind_index("13800138000", "phone") == first_index


@pytest.mark.parametrize(
    "typed",
    [
        "+86 138 0013 8000",
        "13800138000",
        "138-0013-8000",
        "(+86) 138-0013-8000",
        "１３８００１３８０００",
    ],
)
def test_the_blind_index_is_the_same_however_a_phone_is_typed(keys, typed):
    assert pii.blind_index(typed, "phone") == pii.blind_index("13800138000", "phone")


def test_a_different_phone_gets_a_different_index(keys):
    assert pii.blind_index("13800138001", "phone") != pii.blind_index("13800138000", "phone")


def test_the_index_depends_on_the_index_key(keys):
    # given
    before = pii.blind_index("13800138000", "phone")
    # when
    keys.PII_INDEX_KEY = "j" * 40
    # then
    assert pii.blind_index("13800138000", "phone") != before


@pytest.mark.parametrize(
    ("kind", "a", "b"),
    [
        ("email", " Alice@Example.COM ", "alice@example.com"),
        ("text", "Ｈello   WORLD ", "hello world"),
        ("address", "北京市 朝阳区", "北京市  朝阳区"),
    ],
)
def test_other_kinds_normalise_before_indexing(keys, kind, a, b):
    assert pii.blind_index(a, kind) == pii.blind_index(b, kind)


@pytest.mark.parametrize(
    ("value", "kind", "masked"),
    [
        ("13800138000", "phone", "138****8000"),
        ("+86 138 0013 8000", "phone", "138****8000"),
        ("alice@example.com", "email", "a***@example.com"),
        ("北京市朝阳区建国路88号", "address", "北京市朝阳区***"),
        ("12 Baker Street", "address", "12 Bak***"),
        ("secret", "text", "s***"),
    ],
)
def test_masks(value, kind, masked):
    assert pii.mask(value, kind) == masked


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown personal-data kind"):
        pii.normalise("x", "passport")


def test_the_field_stores_ciphertext_and_loads_plaintext(keys, contact_model):
    # given / when
    contact_model.objects.create(phone="13800138000", email=None)
    # then
    [stored] = raw_column(contact_model, "phone")
    assert "13800138000" not in stored
    assert stored.startswith("gAAAAA")  # a Fernet token
    loaded = contact_model.objects.get()
    assert loaded.phone == "13800138000"
    assert loaded.email is None


def test_the_field_refuses_lookups_other_than_isnull(keys, contact_model):
    # given
    contact_model.objects.create(phone="13800138000")
    # when / then
    assert contact_model.objects.filter(email__isnull=True).count() == 1
    with pytest.raises(FieldError, match="Contact.phone is encrypted"):
        contact_model.objects.filter(phone="13800138000").count()
    with pytest.raises(FieldError, match="only isnull is allowed"):
        contact_model.objects.filter(phone__icontains="138").count()


def test_loading_with_a_wrong_key_fails_loudly(keys, contact_model):
    # given
    contact_model.objects.create(phone="13800138000")
    keys.PII_ENCRYPTION_KEYS = [NEW_KEY]
    # when / then
    with pytest.raises(pii.PiiDecryptError):
        contact_model.objects.get()


def test_rotation_re_encrypts_every_row_under_the_new_key(keys, contact_model):
    # given
    for i in range(7):
        contact_model.objects.create(phone=f"1380013800{i}", email=f"u{i}@example.com")
    keys.PII_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    # when
    result = pii_rotate(model=contact_model, field_names=["phone", "email"], batch_size=3)
    # then
    assert (result.rows, result.rotated, result.skipped) == (7, 14, 0)
    newest = Fernet(NEW_KEY.encode())
    for column in ("phone", "email"):
        for token in raw_column(contact_model, column):
            newest.decrypt(token.encode())  # raises if still under the old key
    keys.PII_ENCRYPTION_KEYS = [NEW_KEY]  # the old key can now go
    assert sorted(c.phone for c in contact_model.objects.all()) == [
        f"1380013800{i}" for i in range(7)
    ]


def test_an_interrupted_rotation_resumes_and_every_row_stays_readable(keys, contact_model):
    # given
    phones = [f"1390013900{i}" for i in range(10)]
    for phone in phones:
        contact_model.objects.create(phone=phone)
    keys.PII_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert sorted(c.phone for c in contact_model.objects.all()) == phones  # before
    seen_during: list[list[str]] = []

    def stop_after_first_batch(progress):
        seen_during.append(sorted(c.phone for c in contact_model.objects.all()))
        raise KeyboardInterrupt

    # when: killed after the first batch committed
    with pytest.raises(KeyboardInterrupt):
        pii_rotate(
            model=contact_model,
            field_names=["phone"],
            batch_size=4,
            progress_cb=stop_after_first_batch,
        )
    newest = Fernet(NEW_KEY.encode())
    under_new = [_opens(newest, t) for t in raw_column(contact_model, "phone")]
    # ... and run again
    resumed = pii_rotate(model=contact_model, field_names=["phone"], batch_size=4)

    # then
    assert seen_during == [phones]
    assert under_new == [True] * 4 + [False] * 6
    assert (resumed.rotated, resumed.skipped) == (6, 4)
    assert all(_opens(newest, t) for t in raw_column(contact_model, "phone"))
    keys.PII_ENCRYPTION_KEYS = [NEW_KEY]
    assert sorted(c.phone for c in contact_model.objects.all()) == phones  # after


def test_the_command_finds_encrypted_models_and_reports_rows_per_second(keys, contact_model):
    # given
    contact_model.objects.create(phone="13800138000")
    keys.PII_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert encrypted_fields()[contact_model] == ["phone", "email"]
    out = io.StringIO()
    # when
    call_command("rotate_pii_keys", "--batch-size", "10", stdout=out)
    # then
    assert "conversations.Contact (phone, email): 1 rows, 1 values rotated" in out.getvalue()
    assert "rows/s" in out.getvalue()
    assert _opens(Fernet(NEW_KEY.encode()), raw_column(contact_model, "phone")[0])


def _opens(fernet: Fernet, token: str) -> bool:
    try:
        fernet.decrypt(token.encode())
    except InvalidToken:
        return False
    return True
