from django.db import migrations

DEFAULTS = {
    "zh": "服务开小差，请稍后再试",
    "en": "Something went wrong, please try again",
}


def seed(apps, schema_editor):
    FallbackReply = apps.get_model("conversations", "FallbackReply")
    for language, text in DEFAULTS.items():
        FallbackReply.objects.get_or_create(language=language, defaults={"text": text})


class Migration(migrations.Migration):
    dependencies = [("conversations", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
